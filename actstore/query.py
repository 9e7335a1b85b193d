"""Read-only SQL over a store (Polars SQL over lazy Lance scans, with pushdown).

Tables visible to SQL:
- `activations`: every stored row of every model (metadata and `vector` as a list of floats; a
  query that does not select `vector` never reads it);
- `runs` (provenance), `points` (registered points and widths), `sentences` (texts);
- every analysis result table (`similarity`, `retrieval`, `tsne`, `neurons_top`, ...).

Only one SELECT/WITH statement over these tables, calling allowed functions, is accepted
(`actstore.sql_guard` parses it with sqlglot): statements that write (DROP, DELETE, INSERT, ...,
EXPLAIN of a write) and anything that reads files (`read_csv`, `read_parquet`, ...) are refused
before anything runs, and the engine only ever sees read-only scans of the store.
Named queries ship as `.sql` files in the top-level `sql` package.
"""

from __future__ import annotations

from importlib import resources

import polars as pl

from actstore.errors import QueryError
from actstore.sql_guard import check_plan, check_query
from actstore.schema import POINTS_TABLE, RUNS_TABLE, SENTENCES_TABLE
from actstore.store import Store


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


def sql_context(store: Store) -> pl.SQLContext:
    """A Polars SQL context whose tables are lazy, read-only scans of the store."""
    frames: dict[str, pl.LazyFrame] = {"activations": store.scan_activations()}
    for name in (RUNS_TABLE, POINTS_TABLE, SENTENCES_TABLE, *store.result_tables()):
        if store.has_table(name):
            frames[name] = pl.scan_pyarrow_dataset(store.dataset(name))
    return pl.SQLContext(frames=frames)


def run_query(store: Store, sql: str) -> pl.DataFrame:
    """Run one read-only SQL query over the store and return the result."""
    ctx = sql_context(store)
    statement = check_query(sql, ctx.tables())
    try:
        frame = ctx.execute(statement)
        check_plan(frame.explain(optimized=False))
        return frame.collect()
    except pl.exceptions.SQLSyntaxError as exc:
        raise QueryError(f"The SQL does not parse ({_first_line(exc)}); fix the statement and retry.") from None
    except pl.exceptions.SQLInterfaceError as exc:
        msg = _first_line(exc)
        if "parser error" in msg:
            raise QueryError(f"The SQL does not parse ({msg}); fix the statement and retry.") from None
        if "not found" in msg.lower() or "no table" in msg.lower():
            raise QueryError(f"{msg}; tables are: {', '.join(ctx.tables())}.") from None
        raise QueryError(f"The SQL could not run ({msg}); fix the statement and retry.") from None
    except (pl.exceptions.ColumnNotFoundError, pl.exceptions.InvalidOperationError,
            pl.exceptions.SchemaError, pl.exceptions.ComputeError) as exc:
        raise QueryError(f"The SQL could not run ({_first_line(exc)}); check column names with "
                         "`actstore query \"SELECT * FROM activations LIMIT 1\"`.") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
