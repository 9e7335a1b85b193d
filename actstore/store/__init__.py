"""The activation store: LanceDB tables of pooled vectors, provenance and results.

`Store` (api.py) is a facade over objects with one job each, every one built from the objects it
needs (passed to its constructor, so each can be built and tested alone):

- `connection.Connection`: opening/creating a store (race-free), `meta` and the schema version,
  table handles and Lance datasets; everything below gets it;
- `runs.RunLog(conn)`: provenance rows, and whether a model is random-initialised (the one
  source of that fact);
- `points.PointsRegistry(conn, random_init_of)`: (model, point) -> width, dtype, activation table;
- `activations.ActivationWriter(conn, points)` / `reads.ActivationReader(conn, points)`: keyed
  writes of activation rows / pushdown reads into numpy;
- `finalize.Finalizer(conn, points, keep_versions)`: compaction, indices and the cleanup of old
  versions, which keeps every version a live reader may still read (`retention`);
- `sentences.SentenceTexts(conn)`, `results.ResultTables(conn)`: texts and analysis results;
- `integrity.Integrity(conn, points, runs, sentences, finalizer)`: `actstore check` and repair;
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

from actstore.store_uri import DEFAULT_URI  # defined in core; re-exported for old imports

# Names load on first use, so importing the package does not import LanceDB.
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
