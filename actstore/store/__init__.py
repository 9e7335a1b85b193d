"""The activation store: LanceDB tables of pooled vectors, provenance and results.

One class, `Store`, assembled from modules with one job each:

- `connection`: opening/creating a store (race-free), `meta` and the schema version, table handles;
- `points`: the registry of (model, point) -> width, dtype and activation table;
- `activations` / `reads`: keyed writes of activation rows / pushdown reads into numpy;
- `runs`, `sentences`: provenance rows and sentence texts;
- `results`: analysis result tables, upserted by key in one commit;
- `arrow`: copy-free Arrow <-> numpy/Polars conversions;
- `migration`: in-place upgrade of a store written by an older schema version.

Why it looks like this (measurements in docs/ARCHITECTURE.md, "Store"): reads push filters and projections into the
Lance scan; every write is one commit (atomic: a killed ingest leaves the previous version
intact); keyed tables declare Lance's unenforced primary key so concurrent writers of the same
keys never duplicate them; a store of another schema version is refused with the fix named.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

#: where a store lives when no --db is given
DEFAULT_URI = "./actstore.lance"

# Names load on first use, so `from actstore.store import DEFAULT_URI` (the CLI's option
# defaults) does not import LanceDB and `actstore --help` stays fast.
_LAZY = {
    "Store": "actstore.store.api",
    "Slice": "actstore.store.reads",
    "frame_to_arrow": "actstore.store.arrow",
    "numpy_to_vectors": "actstore.store.arrow",
    "vectors_to_numpy": "actstore.store.arrow",
    "migrate": "actstore.store.migration",
    "MigrationReport": "actstore.store.migration",
}

if TYPE_CHECKING:  # pragma: no cover
    from actstore.store.api import Store
    from actstore.store.arrow import frame_to_arrow, numpy_to_vectors, vectors_to_numpy
    from actstore.store.migration import MigrationReport, migrate
    from actstore.store.reads import Slice


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'actstore.store' has no attribute {name!r}")


__all__ = ["DEFAULT_URI", *_LAZY]
