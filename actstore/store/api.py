"""`Store`: the public facade over the store's objects (see the package docstring).

Each piece is built here from the pieces it depends on and is reachable as an attribute
(`store.connection`, `store.run_log`, `store.registry`, `store.writer`, `store.reader`,
`store.finalizer`, `store.texts`, `store.results`, `store.integrity`). The methods below only
delegate: they keep the API users and the layers above already call.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Callable, Sequence

import polars as pl
import pyarrow as pa

from actstore.store.activations import ActivationWriter
from actstore.store.connection import Connection
from actstore.store.finalize import Finalizer
from actstore.store.integrity import Integrity
from actstore.store.points import PointsRegistry
from actstore.store.reads import ActivationReader, Slice
from actstore.store.results import ResultTables
from actstore.store.runs import RunLog
from actstore.store.sentences import SentenceTexts
from actstore.store_uri import DEFAULT_URI

Keep = timedelta | str | float | None


class Store:
    """A LanceDB database holding activations, provenance and analysis results.

    Use `Store.open(uri)`; `create=False` refuses to make a new store (for read-only commands);
    `storage_options` are passed to `lancedb.connect` (object-store credentials and endpoints);
    `keep_versions` is how long finalize keeps superseded versions for live readers (a timedelta
    or a duration such as "30m"; default $ACTSTORE_KEEP_VERSIONS, else one hour: `retention`).
    """

    def __init__(self, connection: Connection, *, keep_versions: Keep = None):
        self.connection = connection
        self.run_log = RunLog(connection)
        self.registry = PointsRegistry(connection, random_init_of=self.run_log.is_random_init)
        self.writer = ActivationWriter(connection, self.registry)
        self.reader = ActivationReader(connection, self.registry)
        self.finalizer = Finalizer(connection, self.registry, keep_versions)
        self.texts = SentenceTexts(connection)
        self.results = ResultTables(connection)
        self.integrity = Integrity(connection, self.registry, self.run_log, self.texts, self.finalizer)

    @classmethod
    def open(cls, uri: str | Path = DEFAULT_URI, *, create: bool = True, storage_options: dict | None = None,
             keep_versions: Keep = None) -> "Store":
        """Open (or with `create`, make) the store at `uri` (see `Connection.open`)."""
        return cls(Connection.open(uri, create=create, storage_options=storage_options),
                   keep_versions=keep_versions)

    # ------------------------------------------------------------------ connection
    @property
    def uri(self) -> str:
        return self.connection.uri

    @property
    def storage_options(self) -> dict:
        return self.connection.storage_options

    @property
    def schema_version(self) -> int:
        return self.connection.schema_version

    def meta(self) -> dict[str, str]:
        return self.connection.meta()

    def table_names(self) -> list[str]:
        return self.connection.table_names()

    def has_table(self, name: str) -> bool:
        return self.connection.has_table(name)

    def ensure_table(self, name: str, schema: pa.Schema):
        return self.connection.ensure_table(name, schema)

    def dataset(self, name: str):
        return self.connection.dataset(name)

    def table_version(self, name: str) -> int:
        return self.connection.table_version(name)

    def _open_table(self, name: str):  # kept for callers written against the old mixin
        return self.connection.table(name)

    @property
    def _db(self):  # kept for callers written against the old mixin
        return self.connection._db

    # ------------------------------------------------------------------ points
    def points(self, model: str | None = None) -> pl.DataFrame:
        return self.registry.points(model)

    def models(self) -> list[str]:
        return self.registry.models()

    def require_model(self, model: str) -> pl.DataFrame:
        return self.registry.require_model(model)

    def check_points(self, model: str, rows: Sequence[dict]) -> None:
        self.registry.check_points(model, rows)

    def register_points(self, model: str, rows: Sequence[dict], *, random_init: bool | None = None) -> None:
        self.registry.register_points(model, rows, random_init=random_init)

    # ------------------------------------------------------------------ activations
    def write_activations(self, model: str, width: int, rows: pa.Table, *, vector_dtype: str = "float32",
                          replace: bool) -> int:
        return self.writer.write_activations(model, width, rows, vector_dtype=vector_dtype, replace=replace)

    def stored_keys(self, model: str, modality: str, lang: str, points: Sequence[str]) -> pl.DataFrame:
        return self.writer.stored_keys(model, modality, lang, points)

    def delete_model(self, model: str) -> int:
        return self.writer.delete_model(model)

    def read(self, model: str, *, points: str | Sequence[str] | None = None,
             modality: str | Sequence[str] | None = None, langs: Sequence[str] | None = None,
             sentence_ids: Sequence[int] | None = None, columns: Sequence[str] | None = None,
             vectors: bool = True, where: str | None = None) -> Slice:
        return self.reader.read(model, points=points, modality=modality, langs=langs,
                                sentence_ids=sentence_ids, columns=columns, vectors=vectors, where=where)

    def scan_activations(self, model: str | None = None, *, with_vectors: bool = True) -> pl.LazyFrame:
        return self.reader.scan_activations(model, with_vectors=with_vectors)

    def activation_version(self, model: str) -> int:
        return self.reader.activation_version(model)

    def count_rows(self, model: str | None = None) -> int:
        return self.reader.count_rows(model)

    # ------------------------------------------------------------------ finalize
    def finalize_model(self, model: str, on_step: Callable[[str], object] | None = None, *,
                       cleanup: bool = True, keep_versions: Keep = None) -> None:
        self.finalizer.finalize_model(model, on_step, cleanup=cleanup, keep_versions=keep_versions)

    def finalize_table(self, table_name: str, on_step: Callable[[str], object] | None = None, *,
                       cleanup: bool = True, keep_versions: Keep = None) -> None:
        self.finalizer.finalize_table(table_name, on_step, cleanup=cleanup, keep_versions=keep_versions)

    def finalize_needed(self, model: str) -> list[str]:
        return self.finalizer.finalize_needed(model)

    # ------------------------------------------------------------------ runs, sentences, results
    def start_run(self, record: dict) -> str:
        return self.run_log.start_run(record)

    def finish_run(self, run_id: str, *, status: str, n_items: int, n_rows: int) -> None:
        self.run_log.finish_run(run_id, status=status, n_items=n_items, n_rows=n_rows)

    def runs(self, model: str | None = None) -> pl.DataFrame:
        return self.run_log.runs(model)

    def is_random_init(self, model: str) -> bool:
        return self.run_log.is_random_init(model)

    def write_sentences(self, rows: pa.Table) -> None:
        self.texts.write_sentences(rows)

    def sentences(self, langs: Sequence[str] | None = None) -> pl.DataFrame:
        return self.texts.sentences(langs)

    def write_results(self, name: str, frame: pl.DataFrame, *, key: Sequence[str], unit: str | None = None) -> None:
        self.results.write_results(name, frame, key=key, unit=unit)

    def read_results(self, name: str, where: str | None = None) -> pl.DataFrame | None:
        return self.results.read_results(name, where)

    def result_tables(self) -> list[str]:
        return self.results.result_tables()
