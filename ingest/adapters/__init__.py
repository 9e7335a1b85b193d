"""Model adapters: discovery and `load_adapter`.

Every module in this package whose name does not start with `_` (and is not `base`) may define
`ADAPTER = SomeAdapterClass`. `load_adapter` resolves the model to a directory
(`ingest.model_paths`), reads its transformers config and asks each adapter, in `priority`
order (lower first), whether it `matches` the config; the first that does loads the model.
The generic text adapter (`hf_text`) has the lowest priority, so a specific adapter always
wins. Adding a model is adding one module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from actstore.errors import UnknownModelError
from ingest.adapters.base import Adapter, ModelInfo, Pooled
from ingest.model_paths import ResolvedModel, resolve_model

__all__ = ["Adapter", "ModelInfo", "Pooled", "available_adapters", "load_adapter", "adapter_for"]


def available_adapters() -> list[type[Adapter]]:
    """Adapter classes defined by the modules of this package, in the order they are tried."""
    found: list[type[Adapter]] = []
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_") or mod.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        cls = getattr(module, "ADAPTER", None)
        if isinstance(cls, type) and issubclass(cls, Adapter):
            found.append(cls)
    return sorted(found, key=lambda c: (c.priority, c.__name__))


def adapter_for(config) -> type[Adapter]:
    """The first adapter class (by priority) whose `matches(config)` is true."""
    for cls in available_adapters():
        if cls.matches(config):
            return cls
    names = ", ".join(c.__name__ for c in available_adapters())
    raise UnknownModelError(
        f"No adapter handles model_type {getattr(config, 'model_type', None)!r} (adapters: "
        f"{names}); add a module to ingest/adapters/ that defines ADAPTER for it."
    )


def load_adapter(model: str, *, name: str | None = None, device: str = "cpu",
                 dtype: str = "float32", cache_dir: str | Path | None = None) -> Adapter:
    """Resolve `model`, pick its adapter and return it loaded (eval mode, on `device`).

    `name` overrides the stored model name (default: hub id, directory basename, or
    `all-MiniLM-L6-v2` for that alias). `dtype` is the model's (float32, float16, bfloat16);
    pooling is float32 regardless. `cache_dir` overrides the HF hub cache location.
    """
    from transformers import AutoConfig

    resolved: ResolvedModel = resolve_model(model, cache_dir=cache_dir)
    try:
        config = AutoConfig.from_pretrained(str(resolved.path), local_files_only=True)
    except (ValueError, OSError, KeyError) as exc:
        raise UnknownModelError(
            f"Cannot read the config of {model} at {resolved.path} ({str(exc).splitlines()[0]}); "
            "pass a Hugging Face model directory with a valid config.json."
        ) from None
    cls = adapter_for(config)
    adapter = cls(str(resolved.path), name=name or resolved.name, device=device, dtype=dtype,
                  revision=resolved.revision, model_id=model, source=resolved.source)
    adapter.load()
    return adapter
