"""Keys stored twice: count them (`actstore check`), refuse to analyse them, and remove them.

The analyses call `require_unique_keys` (through `Integrity`) before reading a model: a count-distinct over the
key columns of that model's tables (a projection + filter pushed into the Lance scan), cached per
table version, so it costs one scan of five string columns per analysis (~tens of ms at 50k rows).

The functions take anything with `dataset(name)` (a `Connection`, or a `Store`).
"""

from __future__ import annotations

import polars as pl

from actstore.errors import StoreError
from actstore.schema import ACTIVATION_KEY, sql_in, sql_quote, table_key
from actstore.store.connection import Connection
from actstore.store.points import PointsRegistry
from actstore.store.problems import CheckReport, Problem
from actstore.store.runs import RunLog

def stored_keys(conn: Connection, table: str, key: tuple[str, ...], where: str | None = None,
                extra: tuple[str, ...] = (), row_address: bool = False) -> pl.DataFrame:
    """The key columns (and `extra`, and with `row_address` the `_rowaddr`) of `table`'s rows."""
    ds = conn.dataset(table)
    cols = [c for c in (*key, *extra) if c in ds.schema.names]
    return pl.from_arrow(ds.to_table(columns=cols, filter=where, with_row_address=row_address))  # type: ignore


def count_duplicates(conn: Connection, table: str, key: tuple[str, ...], where: str | None = None) -> tuple[int, int]:
    """(keys stored more than once, surplus rows) in `table` (optionally filtered)."""
    keys = stored_keys(conn, table, key, where)
    if keys.height == 0:
        return 0, 0
    groups = keys.group_by(list(key)).len().filter(pl.col("len") > 1)
    return groups.height, int((groups["len"] - 1).sum() or 0)


def check_duplicates(conn: Connection, names: list[str], report: CheckReport) -> None:
    """Add a `duplicate-keys` problem for every keyed table of `names` holding a key twice."""
    for name in names:
        key = table_key(name)
        if key is None:
            continue
        n_keys, surplus = count_duplicates(conn, name, key)
        if n_keys:
            report.problems.append(Problem(
                "duplicate-keys", name, surplus,
                f"table {name!r} stores {n_keys} keys ({', '.join(key)}) more than once: "
                f"{surplus} surplus rows"))


def dedupe(conn: Connection, runs: RunLog, name: str, key: tuple[str, ...]) -> int:
    """Delete all but the newest row of every duplicated key in ONE commit; returns rows deleted.

    Newest: the row whose run started last (activation rows carry their run_id), ties and rows
    without a run broken by write order (the highest row address was written last).
    """
    keys = stored_keys(conn, name, key, extra=("run_id",), row_address=True)
    if keys.height == 0:
        return 0
    if "run_id" in keys.columns:
        keys = keys.join(runs.runs().select("run_id", "started_at"), on="run_id", how="left")
    else:
        keys = keys.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("started_at"))
    ranked = keys.sort(["started_at", "_rowaddr"], nulls_last=False).with_columns(
        pl.len().over(list(key)).alias("_n"), pl.int_range(pl.len()).over(list(key)).alias("_i"))
    drop = ranked.filter((pl.col("_n") > 1) & (pl.col("_i") < pl.col("_n") - 1))["_rowaddr"].to_list()
    if not drop:
        return 0
    conn.dataset(name).delete(sql_in("_rowaddr", [int(a) for a in drop]))
    conn.table(name).checkout_latest()
    return len(drop)


def require_unique_keys(conn: Connection, points: PointsRegistry, model: str, cache: dict) -> None:
    """Refuse to analyse a model whose activation keys are stored twice (rows would count twice).

    `cache` maps (table, model) to the table version found clean, so an analysis calling this
    from several entry points pays for one scan.
    """
    for name in points.points(model)["table_name"].unique().sort().to_list():
        if not conn.has_table(name):
            continue
        version = conn.dataset(name).version
        if cache.get((name, model)) == version:
            continue
        n_keys, surplus = count_duplicates(conn, name, ACTIVATION_KEY, f"model = {sql_quote(model)}")
        if n_keys:
            raise StoreError(
                f"Model {model!r} has {n_keys} activation keys stored more than once ({surplus} surplus "
                f"rows, which every analysis would count twice); run `actstore check --repair --db "
                f"{conn.uri}` to remove them and analyse again."
            )
        cache[(name, model)] = version
