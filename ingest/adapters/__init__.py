"""Model adapters: the registry (entry points `actstore.adapters`) and `load_adapter`.

`load_adapter` resolves `--model` to a `ModelSource` (`actstore.ingest.model_paths`), takes the
adapter named by `--adapter` or else the first registered adapter, in `priority` order, that
`recognises` the source, and returns it loaded. The generic text adapter has the lowest priority,
so a specific adapter always wins. Adding a model family = one module with an `Adapter` subclass
and one entry point (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path

from actstore.ingest.adapters.base import Adapter, ModelInfo, Pooled
from actstore.ingest.adapters.registry import adapter_for, adapter_named, registered_adapters
from actstore.ingest.model_paths import ModelSource, resolve_model

__all__ = ["Adapter", "ModelInfo", "ModelSource", "Pooled", "adapter_for", "adapter_named",
           "load_adapter", "registered_adapters"]


def load_adapter(model: str, *, adapter: str | None = None, name: str | None = None,
                 device: str = "cpu", dtype: str = "float32", cache_dir: str | Path | None = None,
                 options: dict | None = None) -> Adapter:
    """Resolve `model`, pick its adapter and return it loaded (eval mode, on `device`).

    adapter: a registry name that skips recognition (`--adapter`); name: the stored model name
    (default: hub id, basename, or `all-MiniLM-L6-v2` for that alias); dtype: the model's
    (float32, float16, bfloat16), pooling is float32 regardless; cache_dir: the HF hub cache;
    options: adapter-specific settings, recorded in provenance.
    """
    cls = adapter_named(adapter) if adapter else None
    families = [cls] if cls is not None else list(registered_adapters().values())
    source = resolve_model(model, cache_dir=cache_dir, locators=[c.locate for c in families],
                           known=[name for c in families for name in c.known_models()])
    if cls is None:
        cls = adapter_for(source)
    loaded = cls(source, name=name, device=device, dtype=dtype, options=options)
    loaded.load()
    return loaded
