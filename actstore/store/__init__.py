"""The activation store: LanceDB tables of pooled vectors, provenance and results.

One class, `Store`, assembled from modules with one job each:

- `connection`: opening/creating a store (race-free), `meta` and the schema version, table handles;
- `points`: the registry of (model, point) -> width, dtype and activation table;
- `activations` / `reads`: keyed writes of activation rows / pushdown reads into numpy;
- `runs`, `sentences`: provenance rows and sentence texts;
- `results`: analysis result tables, upserted by key in one commit;
- `arrow`: copy-free Arrow <-> numpy/Polars conversions;
- `migrate`: in-place upgrade of a store written by an older schema version.

Why it looks like this (measurements in DESIGN §2): reads push filters and projections into the
Lance scan; every write is one commit (atomic: a killed ingest leaves the previous version
intact); keyed tables declare Lance's unenforced primary key so concurrent writers of the same
keys never duplicate them; a store of another schema version is refused with the fix named.
"""

from __future__ import annotations

from actstore.store.activations import ActivationWriter
from actstore.store.arrow import frame_to_arrow, numpy_to_vectors, vectors_to_numpy
from actstore.store.connection import DEFAULT_URI, Connection
from actstore.store.migrate import MigrationReport, migrate
from actstore.store.points import PointsRegistry
from actstore.store.reads import ActivationReader, Slice
from actstore.store.results import ResultTables
from actstore.store.runs import RunLog
from actstore.store.sentences import SentenceTexts


class Store(Connection, PointsRegistry, ActivationWriter, ActivationReader, RunLog, SentenceTexts,
            ResultTables):
    """A LanceDB database holding activations, provenance and analysis results.

    Use `Store.open(uri)`; `create=False` refuses to make a new store (for read-only commands);
    `storage_options` are passed to `lancedb.connect` (object-store credentials and endpoints).
    """


__all__ = [
    "DEFAULT_URI", "MigrationReport", "Slice", "Store", "frame_to_arrow", "migrate",
    "numpy_to_vectors", "vectors_to_numpy",
]
