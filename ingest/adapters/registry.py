"""The adapter registry: Python entry points in the group `actstore.adapters`.

A distribution makes an adapter available by declaring, in its `pyproject.toml`,

    [project.entry-points."actstore.adapters"]
    my-family = "my_package.my_module:MyAdapter"

actstore's own adapters are declared the same way, so a third-party adapter is a peer of the
built-ins: it can be named with `--adapter my-family` or be picked by `recognises`. The registry
name is copied onto the class (`Adapter.family`) so provenance records it.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.base import Adapter
from actstore.ingest.model_paths import ModelSource

GROUP = "actstore.adapters"
log = logging.getLogger(__name__)


def registered_adapters() -> dict[str, type[Adapter]]:
    """Registry name -> adapter class, every entry point of the group, in (priority, name) order.

    An entry point that fails to import is logged and left out rather than breaking every other
    family (a broken third-party plug-in must not take the built-ins down).
    """
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a plug-in's import error is reported, not fatal
            log.warning("adapter entry point %s = %s failed to load: %s", ep.name, ep.value, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            log.warning("adapter entry point %s = %s is not an Adapter subclass; ignored", ep.name, ep.value)
            continue
        cls.family = ep.name
        found[ep.name] = cls
    return dict(sorted(found.items(), key=lambda kv: (kv[1].priority, kv[0])))


def adapter_named(name: str) -> type[Adapter]:
    """The adapter registered as `name` (for `--adapter NAME`)."""
    adapters = registered_adapters()
    if name not in adapters:
        from actstore.ingest.model_paths import did_you_mean

        raise UnknownModelError(
            f"No adapter is registered as {name!r}.{did_you_mean(name, adapters)} Use one of "
            f"{', '.join(adapters) or 'none'} "
            f"(or install the package that provides it: entry point group {GROUP!r})."
        )
    return adapters[name]


def adapter_for(source: ModelSource) -> type[Adapter]:
    """The first adapter (by priority) that recognises `source`."""
    adapters = registered_adapters()
    for cls in adapters.values():
        if cls.recognises(source):
            return cls
    config = source.hf_config()
    what = (f"a transformers model of model_type {getattr(config, 'model_type', None)!r}"
            if config is not None else "a file layout")
    raise UnknownModelError(
        f"No adapter recognises {source.path} ({what}); name one with --adapter "
        f"({', '.join(adapters)}) or install a package that registers an adapter for it."
    )


def adapter_table():
    """The registry as a Polars frame: name, modalities, paired, priority, neuron-site kinds,
    whether it decodes (teacher-forced), class, what it is."""
    import polars as pl

    rows = []
    for name, cls in registered_adapters().items():
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append({"adapter": name, "modalities": ",".join(cls.modalities),
                     "paired": bool(cls.paired), "priority": cls.priority,
                     "sites": ",".join(cls.site_kinds), "decoder": bool(cls.decodes),
                     "class": f"{cls.__module__}.{cls.__qualname__}", "about": doc[0] if doc else ""})
    return pl.DataFrame(rows)


def point_table(adapter):
    """A loaded adapter's points and sites as a Polars frame, one row per (modality, name)."""
    import polars as pl

    from actstore.ingest.adapters.common.sites import parse_name

    rows = []
    for modality in adapter.modalities:
        for default, names in ((True, adapter.points(modality)), (False, adapter.optional_points(modality))):
            for p in names:
                parsed = parse_name(p)
                kind = "site" if parsed and parsed[2] else "decoder" if p.startswith("decoder.") else "hidden"
                rows.append({"modality": modality, "point": p, "kind": kind, "layer": adapter.layer_of(p),
                             "width": adapter.width(p), "default": default})
    return pl.DataFrame(rows)
