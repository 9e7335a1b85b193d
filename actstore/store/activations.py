"""Writing activation rows: one keyed commit per batch, the keys already stored, delete.

Every write is a `merge_insert` on `ACTIVATION_KEY`, which the activation tables declare as
their (unenforced) primary key: Lance then detects two concurrent writers inserting the same new
keys and retries one of them against the other's commit, so concurrent ingests of the same
(model, language, modality) leave one row per key (docs/ARCHITECTURE.md, "Store"). A plain `add` has no such guard,
so it is never used for activations.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl
import pyarrow as pa

from actstore.errors import StoreError
from actstore.schema import (
    ACTIVATION_KEY,
    POINTS_TABLE,
    activation_schema,
    activation_table_name,
    sql_in,
    sql_quote,
)
from actstore.store.connection import Connection, retry_race
from actstore.store.points import PointsRegistry


class ActivationWriter:
    """Writes to the `act_*` tables; `points` says which tables a model's rows live in."""

    def __init__(self, conn: Connection, points: PointsRegistry):
        self.conn = conn
        self.points = points

    def write_activations(self, model: str, width: int, rows: pa.Table, *,
                          vector_dtype: str = "float32", replace: bool) -> int:
        """Write one batch of activation rows of one width in ONE commit; returns the rows given.

        `replace=True` updates keys already stored and inserts new ones; `replace=False` inserts
        only keys not stored yet (rows whose key another process stored meanwhile are dropped,
        never duplicated).
        """
        name = activation_table_name(model, width)
        schema = activation_schema(width, vector_dtype)
        if not rows.schema.equals(schema, check_metadata=False):
            try:
                rows = rows.select(schema.names).cast(schema)
            except (pa.ArrowInvalid, KeyError, ValueError) as exc:
                raise StoreError(
                    f"Rows for model {model!r} do not match the activation schema of width {width} "
                    f"({exc}); this is a bug in the writer, please report it."
                ) from None
        if rows.num_rows == 0:
            return 0
        tbl = self.conn.ensure_table(name, schema)
        if tbl.schema.names != rows.schema.names:  # a migrated table appended `corpus` at its end
            rows = rows.select(tbl.schema.names)

        def merge_rows():
            # Another ingest's finalize may have compacted the table and removed the version this
            # handle last saw (its files are gone): read the latest one, and retry a conflict.
            tbl.checkout_latest()
            merge = tbl.merge_insert(list(ACTIVATION_KEY))
            if replace:
                merge = merge.when_matched_update_all()
            merge.when_not_matched_insert_all().execute(rows)

        retry_race(merge_rows, f"Writing table {name!r} of {self.conn.uri}")
        return rows.num_rows

    def stored_keys(self, model: str, modality: str, lang: str, points: Sequence[str]) -> pl.DataFrame:
        """(point, sample_id) rows already stored for one ingest job (for resume)."""
        pts = self.points.points(model)
        pts = pts.filter(pl.col("point").is_in(list(points)))
        frames = []
        for table_name in pts["table_name"].unique().to_list():
            ds = self.conn.dataset(table_name)
            flt = " AND ".join([
                f"model = {sql_quote(model)}", f"modality = {sql_quote(modality)}",
                f"lang = {sql_quote(lang)}", sql_in("point", list(points)),
            ])
            frames.append(pl.from_arrow(ds.to_table(columns=["point", "sample_id"], filter=flt)))
        if not frames:
            return pl.DataFrame(schema={"point": pl.String, "sample_id": pl.String})
        return pl.concat(frames)  # type: ignore[arg-type]

    def delete_model(self, model: str) -> int:
        """Remove every activation row and point of a model (results stay, runs stay)."""
        pts = self.points.points(model)
        n = 0
        for table_name in pts["table_name"].unique().to_list():
            tbl = self.conn.table(table_name)
            n += tbl.count_rows(f"model = {sql_quote(model)}")
            tbl.delete(f"model = {sql_quote(model)}")
        if pts.height:
            self.conn.table(POINTS_TABLE).delete(f"model = {sql_quote(model)}")
        return n
