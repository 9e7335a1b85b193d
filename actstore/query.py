"""Read-only SQL over a store: DuckDB over the store's Lance datasets, bounded and streamed.

Tables visible to SQL:
- `activations`: every stored row of every model (metadata and `vector` as a list of floats; a
  query that does not select `vector` never reads it);
- `runs` (provenance), `points` (registered points and widths), `sentences` (texts);
- every analysis result table (`similarity`, `retrieval`, `tsne`, `neurons_top`, ...).

Only one SELECT/WITH statement over these tables, calling allowed functions, is accepted
(`actstore.sql_guard` parses it with sqlglot): statements that write (DROP, DELETE, INSERT, ...,
EXPLAIN of a write) and anything that reads files (`read_csv`, `read_parquet`, ...) are refused
before anything runs, and the engine (`actstore.query_engine`) has file access switched off.
Every query is bounded (`Limits`): result rows, engine memory and wall time, each with a
one-sentence refusal naming the limit and the flag that raises it. `stream_query` writes a
result of any size to a file batch by batch.
Named queries ship as `.sql` files in the top-level `sql` package.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from actstore.errors import QueryError
from actstore.query_engine import Limits, connect, deadline, visible_tables
from actstore.schema import POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE
from actstore.sql_guard import check_query, is_show_tables, keyword_columns
from actstore.store import Store

__all__ = ["Limits", "check_read_only", "named_queries", "named_query", "run_query", "stream_query",
           "table_schema"]

log = logging.getLogger("actstore.query")
BATCH_ROWS = 65_536


def check_read_only(sql: str, tables=("activations", RUNS_TABLE, POINTS_TABLE, SENTENCES_TABLE)) -> str:
    """Return the single statement if it is a read-only query over `tables`; raise QueryError otherwise.

    The rules (one SELECT over store tables with allowed functions only) live in `sql_guard`.
    """
    return check_query(sql, tables)


def named_queries() -> dict[str, str]:
    """Name -> SQL text of the queries shipped in the `sql` package."""
    out = {}
    for entry in resources.files("actstore.sql").iterdir():
        if entry.name.endswith(".sql"):
            out[entry.name[:-4]] = entry.read_text("utf-8")
    return dict(sorted(out.items()))


def named_query(name: str) -> str:
    queries = named_queries()
    if name not in queries:
        raise QueryError(f"No named query {name!r}; choose one of {', '.join(queries)}.")
    return queries[name]


def batches(store: Store, sql: str, limits: Limits = Limits()) -> Iterator[pa.RecordBatch]:
    """The result of one read-only query as Arrow record batches, within `limits`.

    A generator: the first batch is yielded after the query is checked and started; the row
    limit is enforced as batches arrive, so an oversized result stops early instead of filling
    memory. The first item yielded is the result's schema (an empty batch).
    """
    tables = visible_tables(store)
    statement = check_query(sql, tables)
    for word in keyword_columns(statement):
        log.warning("%s in the select list is the SQL keyword %s (the same value on every row), not a "
                    "column; write \"%s\" in double quotes to select a column of that name.",
                    word, word.upper(), word.lower())
    if is_show_tables(statement):
        table = pa.table({"name": tables})
        yield from table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
        return
    con = connect(store, limits)
    try:
        with deadline(con, limits.timeout_s) as fired:
            try:
                rel = con.sql(statement)
                to_reader = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch  # duckdb < 1.4
                reader = to_reader(BATCH_ROWS)
                schema = unique_names(reader.schema)
                yield pa.RecordBatch.from_pylist([], schema=schema)
                rows = 0
                for batch in reader:
                    batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                    rows += batch.num_rows
                    if limits.max_rows and rows > limits.max_rows:
                        raise QueryError(f"The result has more than {limits.max_rows:,} rows (the row "
                                         "limit); add a LIMIT, or raise the limit with --max-rows N "
                                         "(0 for none).")
                    yield batch
            except (duckdb.Error, pa.ArrowException, OSError) as exc:  # the reader raises DuckDB's as Arrow's
                raise _translate(exc, tables, limits, fired.is_set()) from None
    finally:
        con.close()


def unique_names(schema: pa.Schema) -> pa.Schema:
    """The schema with repeated column names made unique: `model, model` -> `model, model_1`.

    SQL allows `SELECT a.model, b.model`; a data frame, and every reader of the file written, needs
    distinct names (DuckDB's own Python data frames name them the same way).
    """
    seen: set[str] = set()
    fields = []
    for field in schema:
        name, i = field.name, 0
        while name in seen:
            i += 1
            name = f"{field.name}_{i}"
        seen.add(name)
        fields.append(field.with_name(name))
    return pa.schema(fields, metadata=schema.metadata)


def run_query(store: Store, sql: str, limits: Limits = Limits()) -> pl.DataFrame:
    """Run one read-only SQL query over the store and return the result (at most `max_rows`)."""
    it = batches(store, sql, limits)
    head = next(it)
    table = pa.Table.from_batches([head, *it], schema=head.schema)
    return pl.from_arrow(table)  # type: ignore[return-value]


def stream_query(store: Store, sql: str, path: str | Path, fmt: str, limits: Limits = Limits()) -> int:
    """Write the result of one query to `path` batch by batch; return the number of rows.

    Memory stays bounded by a batch, whatever the result's size; a failed query (a limit, an
    error) leaves no file behind.
    """
    from actstore.output import write_batches

    it = batches(store, sql, limits)
    head = next(it)
    return write_batches(head.schema, it, fmt, Path(path))


def table_schema(store: Store, table: str | None = None) -> pl.DataFrame:
    """The tables (name, rows, columns) or one table's columns (name, type): a newcomer's map."""
    tables = visible_tables(store)
    if table is None:
        con = connect(store)
        try:
            rows = []
            for name in tables:
                cols = con.execute(f'DESCRIBE "{name}"').fetchall()
                n = store.count_rows() if name == "activations" else store.dataset(name).count_rows()
                rows.append({"table": name, "rows": n, "columns": ", ".join(c[0] for c in cols)})
        finally:
            con.close()
        return pl.DataFrame(rows, schema={"table": pl.String, "rows": pl.Int64, "columns": pl.String})
    if table.lower() not in {t.lower() for t in tables}:
        raise QueryError(f"Table {table!r} is not in this store; tables are: {', '.join(tables)}.")
    df = run_query(store, f'DESCRIBE "{table.lower()}"')
    return df.select(pl.col("column_name").alias("column"), pl.col("column_type").alias("type"),
                     pl.col("null").alias("nullable"))


def _translate(exc: Exception, tables: list[str], limits: Limits, timed_out: bool) -> QueryError:
    """One sentence for a DuckDB error (raised as itself, or as an Arrow/OS error while streaming)."""
    msg = _first_line(exc)
    if not isinstance(exc, duckdb.Error):  # streamed: DuckDB's error type survives only in the text
        kinds = {"INTERRUPT": duckdb.InterruptException, "Out of Memory": duckdb.OutOfMemoryException,
                 "Permission": duckdb.PermissionException, "Catalog": duckdb.CatalogException}
        kind = next((k for prefix, k in kinds.items() if msg.startswith(prefix)), duckdb.Error)
        exc = kind(msg)
    if timed_out or isinstance(exc, duckdb.InterruptException):
        return QueryError(f"The query ran longer than {limits.timeout_s:g} s (the time limit) and was "
                          "stopped; raise the limit with --timeout SECONDS (0 for none).")
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryError(f"The query needed more than {limits.memory} of memory (the memory limit) and "
                          "was stopped; raise it with --memory-limit, or add a LIMIT.")
    if isinstance(exc, duckdb.PermissionException):
        return QueryError("The query would read a file outside the store and is refused; query only "
                          "the store's tables.")
    if isinstance(exc, (duckdb.ParserException, duckdb.SyntaxException)):
        return QueryError(f"The SQL does not parse ({msg}); fix the statement and retry.")
    if isinstance(exc, duckdb.CatalogException):
        return QueryError(f"{msg}; tables are: {', '.join(tables)}.")
    return QueryError(f"The SQL could not run ({msg}); check names and types with "
                      "`actstore query --schema TABLE`.")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.rstrip(".").replace(". ", "; ")
