"""DuckDB over the store's Lance datasets: the engine that answers `actstore query`.

Why DuckDB and not Polars SQL (measured in benchmarks/bench_query_engines.py, docs/ARCHITECTURE.md
"Query"): Polars SQL over `scan_pyarrow_dataset` answered `COUNT(*)` over implicit and CROSS joins
with 0 (a zero-column projection pushed into the scans), and disagreed with DuckDB on further
classes of query; DuckDB is the reference the differential suite checks against, and it brings the
bounds a query needs: a memory limit, an interrupt for a time limit, and record-batch streaming.

The connection sees the store read-only and nothing else:
- every table is a registered Lance dataset (projection and filter pushdown into Lance);
- `activations` is a view, the union of every activation table with `vector` as FLOAT[];
- float16 vectors, which DuckDB cannot read, are cast to float32 batch by batch as they stream;
- file access, Python variable lookup and temp-file spilling are off and the configuration is
  locked, so no statement, whatever the guard thought of it, can open a file outside the store;
- each query runs on its own cursor of a per-process database (cheap; see `_base`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from actstore.errors import QueryError
from actstore.schema import METADATA_FIELDS, POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE
from actstore.store import Store

ACTIVATIONS = "activations"


@dataclass(frozen=True)
class Limits:
    """Bounds on one query: result rows, engine memory, wall time (None or 0: no bound)."""

    max_rows: int | None = 1_000_000
    memory: str = "2GB"
    timeout_s: float | None = 600.0
    threads: int = 2


def _f32(t: pa.DataType) -> pa.DataType:
    """`t` with every float16 inside it made float32 (DuckDB has no half-precision type)."""
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_fixed_size_list(t):
        return pa.list_(pa.field(t.value_field.name, _f32(t.value_type)), t.list_size)
    if pa.types.is_list(t):
        return pa.list_(_f32(t.value_type))
    if pa.types.is_large_list(t):
        return pa.large_list(_f32(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_f32(f.type)) for f in t])
    return t


class _Float32View(pads.Dataset):
    """A Lance dataset seen with float16 columns as float32, scanned lazily with pushdown.

    DuckDB scans a pyarrow Dataset by calling `schema` and `scanner(columns=, filter=)`; this
    forwards both to Lance and casts each batch, so nothing is materialised up front.
    """

    def __init__(self, dataset):  # noqa: D107 - no super().__init__: pyarrow's is not callable
        self._ds = dataset
        self._schema = pa.schema([f.with_type(_f32(f.type)) for f in dataset.schema])

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def scanner(self, columns=None, filter=None, **_kw):  # noqa: A002 - pyarrow's name
        inner = self._ds.scanner(columns=columns, filter=filter)
        target = self._schema

        class _Scan:
            def to_reader(self):
                reader = inner.to_reader()
                out = pa.schema([target.field(n) for n in reader.schema.names])
                return pa.RecordBatchReader.from_batches(out, (b.cast(out) for b in reader))

        return _Scan()


def _readable(dataset):
    schema = dataset.schema
    return dataset if all(_f32(f.type) == f.type for f in schema) else _Float32View(dataset)


def _empty_activations() -> pa.Table:
    fields = [pa.field(f.name, f.type) for f in METADATA_FIELDS]
    return pa.table({f.name: pa.array([], f.type) for f in fields}
                    | {"vector": pa.array([], pa.list_(pa.float32()))})


def visible_tables(store: Store) -> list[str]:
    """The tables SQL sees, in the order `SHOW TABLES` lists them."""
    present = set(store.table_names())  # one listing of the store, not one per table
    names = [ACTIVATIONS] + [n for n in (RUNS_TABLE, POINTS_TABLE, SENTENCES_TABLE) if n in present]
    return names + list(store.result_tables())


_BASES: dict[tuple[str, int], duckdb.DuckDBPyConnection] = {}
_BASES_LOCK = threading.Lock()


def _base(memory: str, threads: int) -> duckdb.DuckDBPyConnection:
    """One locked-down in-memory database per (memory, threads), created once per process.

    Creating a DuckDB database costs ~20 ms; a cursor on an existing one costs microseconds and
    keeps its own registered tables and temporary views, so each query gets a private cursor.
    """
    with _BASES_LOCK:
        base = _BASES.get((memory, threads))
        if base is None:
            try:
                base = duckdb.connect(":memory:", config={
                    "memory_limit": memory, "threads": threads, "python_enable_replacements": False,
                    "temp_directory": "", "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                })
            except duckdb.Error:
                raise QueryError(f"The memory limit {memory!r} is not a size; pass one like 2GB or "
                                 "500MB to --memory-limit.") from None
            base.execute("SET enable_external_access = false")
            base.execute("SET lock_configuration = true")
            _BASES[(memory, threads)] = base
        return base


def connect(store: Store, limits: Limits = Limits()) -> duckdb.DuckDBPyConnection:
    """A private cursor on a locked-down database whose tables are the store's datasets.

    Close it when done: its registered tables and the `activations` view go with it.
    """
    con = _base(limits.memory, max(1, int(limits.threads))).cursor()
    visible = visible_tables(store)
    for name in visible[1:]:
        con.register(name, _readable(store.dataset(name)))
    parts = []
    tables = store.points()["table_name"].unique().sort().to_list() if POINTS_TABLE in visible else []
    for i, table_name in enumerate(tables):
        con.register(f"__act_{i}", _readable(store.dataset(table_name)))
        parts.append(f'SELECT * REPLACE (CAST(vector AS FLOAT[]) AS vector) FROM "__act_{i}"')
    if not parts:
        con.register("__act_empty", _empty_activations())
        parts.append('SELECT * FROM "__act_empty"')
    con.execute(f"CREATE TEMP VIEW {ACTIVATIONS} AS " + " UNION ALL BY NAME ".join(parts))
    return con


@contextlib.contextmanager
def deadline(con: duckdb.DuckDBPyConnection, seconds: float | None) -> Iterator[threading.Event]:
    """Interrupt `con` after `seconds`; the event says whether the time limit fired."""
    fired = threading.Event()
    if not seconds:
        yield fired
        return

    def stop():
        fired.set()
        con.interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
