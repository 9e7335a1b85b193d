"""The points registry against the activation rows: what is stored but unregistered (invisible to
every reader), registered but empty, or registered with another width, dtype or table; and the
one merge commit that makes the registry match the rows.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from actstore.schema import POINTS_SCHEMA, POINTS_TABLE, sql_quote
from actstore.store.connection import Connection
from actstore.store.points import PointsRegistry
from actstore.store.problems import CheckReport, Problem
from actstore.store.runs import RunLog


def stored_points(conn: Connection, act_tables: list[str]) -> pl.DataFrame:
    """(model, point, table_name, modality, layer, width, vector_dtype, rows) found in the tables."""
    frames = []
    for name in act_tables:
        ds = conn.dataset(name)
        vec = ds.schema.field("vector").type
        dtype = "float16" if pa.types.is_float16(vec.value_type) else "float32"
        t = pl.from_arrow(ds.to_table(columns=["model", "point", "modality", "layer"]))
        frames.append(t.group_by("model", "point").agg(  # type: ignore[union-attr]
            pl.col("modality").first(), pl.col("layer").first(), pl.len().alias("rows"))
            .with_columns(pl.lit(name).alias("table_name"), pl.lit(vec.list_size, pl.Int32).alias("width"),
                          pl.lit(dtype).alias("vector_dtype")))
    if not frames:
        return pl.DataFrame(schema={"model": pl.String, "point": pl.String, "modality": pl.String,
                                    "layer": pl.Int32, "rows": pl.UInt32, "table_name": pl.String,
                                    "width": pl.Int32, "vector_dtype": pl.String})
    return pl.concat(frames)


def points_diff(conn: Connection, points: PointsRegistry, act_tables: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(unregistered, registered without rows, registered with the wrong width/table)."""
    stored = stored_points(conn, act_tables)
    registered = points.points()
    unregistered = stored.join(registered.select("model", "point"), on=["model", "point"], how="anti")
    empty = registered.join(stored.select("model", "point"), on=["model", "point"], how="anti")
    both = registered.join(stored, on=["model", "point"], suffix="_stored")
    wrong = both.filter((pl.col("width") != pl.col("width_stored"))
                        | (pl.col("table_name") != pl.col("table_name_stored"))
                        | (pl.col("vector_dtype") != pl.col("vector_dtype_stored")))
    return unregistered, empty, wrong


def check_points(conn: Connection, points: PointsRegistry, act_tables: list[str], report: CheckReport) -> None:
    """Add a problem for unregistered points, empty registrations and wrong widths/tables."""
    unregistered, empty, wrong = points_diff(conn, points, act_tables)
    if unregistered.height:
        report.problems.append(Problem(
            "unregistered-points", POINTS_TABLE, unregistered.height,
            f"{unregistered.height} (model, point) pairs have {int(unregistered['rows'].sum())} activation "
            f"rows but are not in the points registry ({_names(unregistered)}), so no reader sees them"))
    if empty.height:
        report.problems.append(Problem(
            "empty-points", POINTS_TABLE, empty.height,
            f"{empty.height} registered (model, point) pairs have no activation rows ({_names(empty)})"))
    if wrong.height:
        report.problems.append(Problem(
            "point-width", POINTS_TABLE, wrong.height,
            f"{wrong.height} registered points disagree with their rows on width, dtype or table "
            f"({_names(wrong)})"))


def _names(frame: pl.DataFrame, n: int = 4) -> str:
    names = [f"{r['model']}/{r['point']}" for r in frame.head(n).iter_rows(named=True)]
    return ", ".join(names) + (f", +{frame.height - n} more" if frame.height > n else "")




def repair_points(conn: Connection, points: PointsRegistry, runs: RunLog, acts: list[str]) -> int:
    """Register unregistered points, fix wrong widths/tables and drop empty registrations: one merge."""
    unregistered, empty, wrong = points_diff(conn, points, acts)
    if not (unregistered.height or empty.height or wrong.height):
        return 0
    # the registry's random_init is a copy of the runs table's (the source of truth, runs.py)
    random_models = set(runs.runs().filter(pl.col("random_init").fill_null(False))["model"].to_list())
    fixed = pl.concat([
        unregistered.select("model", "point", "modality", "layer", "width", "vector_dtype", "table_name"),
        wrong.select("model", "point", pl.col("modality_stored").alias("modality"),
                     pl.col("layer_stored").alias("layer"), pl.col("width_stored").alias("width"),
                     pl.col("vector_dtype_stored").alias("vector_dtype"),
                     pl.col("table_name_stored").alias("table_name")),
    ]).with_columns(pl.col("model").is_in(list(random_models)).alias("random_init"))
    rows = pa.Table.from_pylist(fixed.to_dicts(), schema=POINTS_SCHEMA)
    tbl = conn.ensure_table(POINTS_TABLE, POINTS_SCHEMA)
    merge = tbl.merge_insert(["model", "point"]).when_matched_update_all().when_not_matched_insert_all()
    if empty.height:
        merge = merge.when_not_matched_by_source_delete(" OR ".join(
            f"(model = {sql_quote(r['model'])} AND point = {sql_quote(r['point'])})"
            for r in empty.iter_rows(named=True)))
    if rows.num_rows == 0:  # merge_insert needs a source: delete the empty registrations alone
        tbl.delete(" OR ".join(f"(model = {sql_quote(r['model'])} AND point = {sql_quote(r['point'])})"
                               for r in empty.iter_rows(named=True)))
    else:
        merge.execute(rows)
    return unregistered.height + empty.height + wrong.height
