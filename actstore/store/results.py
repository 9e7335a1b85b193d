"""Result tables: analyses upsert rows by a key that identifies each number, in one commit.

A result row is identified by its key (model, measure, kind, depth, languages, n and the options
that change the number; each analysis names its key). Writing a frame replaces exactly the
stored rows with the same key and adds the rest, in ONE `merge_insert` commit: a reader sees the
old rows or the new ones, never neither, and a rerun on a subset of languages leaves every other
row alone (issue 7, item 4). Results that are one unit (a t-SNE map: one embedding) also pass a
`unit` filter: stored rows inside it that the new frame does not hold are deleted in the same
commit.

A frame with a column the table lacks adds that column (null in older rows); a column stored with
another type is refused with a sentence naming it. A result table is never rewritten wholesale.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl
import pyarrow as pa

from actstore.errors import StoreError
from actstore.schema import ACTIVATION_PREFIX, RESERVED_TABLES
from actstore.store.arrow import frame_to_arrow
from actstore.store.connection import Connection


def _check_key(name: str, frame: pl.DataFrame, key: Sequence[str]) -> None:
    """Key columns must exist, hold no nulls (null never matches) and be unique within `frame`."""
    if not key:
        raise StoreError(f"Writing result table {name!r} needs key columns; this is a bug in the analysis.")
    absent = [k for k in key if k not in frame.columns]
    if absent:
        raise StoreError(f"Result rows for {name!r} lack key column(s) {absent}; this is a bug in the analysis.")
    nulls = [k for k in key if frame[k].null_count()]
    if nulls:
        raise StoreError(f"Result rows for {name!r} have nulls in key column(s) {nulls}; this is a bug in the analysis.")
    if frame.select(list(key)).is_duplicated().any():
        raise StoreError(
            f"Result rows for {name!r} repeat a key ({', '.join(key)}); the key misses a column "
            "that tells these rows apart: this is a bug in the analysis."
        )


class ResultTables:
    """Write, read and list the analyses' result tables."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def write_results(self, name: str, frame: pl.DataFrame, *, key: Sequence[str],
                      unit: str | None = None) -> None:
        """Upsert `frame` into result table `name` on `key` in one commit.

        Stored rows with a key in `frame` are replaced, new keys are added, every other row stays;
        with `unit` (a filter over the table), stored rows matching it whose key is not in
        `frame` are deleted in the same commit.
        """
        if name.startswith(ACTIVATION_PREFIX) or name in RESERVED_TABLES:
            raise StoreError(f"{name!r} is a reserved table name; choose another result table name.")
        if frame.height == 0:
            return
        _check_key(name, frame, key)
        data = frame_to_arrow(frame)
        tbl = self.conn.ensure_table(name, data.schema)
        data = self._conform(name, tbl, data)
        merge = tbl.merge_insert(list(key)).when_matched_update_all().when_not_matched_insert_all()
        if unit is not None:
            merge = merge.when_not_matched_by_source_delete(unit)
        merge.execute(data)

    def _conform(self, name: str, tbl, data: pa.Table) -> pa.Table:
        """`data` in the stored table's schema: new columns are added to the table, absent ones null."""
        tbl.checkout_latest()
        stored = tbl.schema
        new = [f for f in data.schema if f.name not in stored.names]
        if new:
            tbl.add_columns([pa.field(f.name, f.type, nullable=True) for f in new])
            tbl.checkout_latest()
            stored = tbl.schema
        columns = []
        for field in stored:
            if field.name not in data.schema.names:
                columns.append(pa.nulls(data.num_rows, field.type))
                continue
            column = data.column(field.name)
            if column.type != field.type:
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise StoreError(
                        f"Result table {name!r} stores column {field.name!r} as {field.type}, but the "
                        f"analysis now writes {column.type}; move the store's {name}.lance directory "
                        "away (results are recomputable) and rerun the analysis."
                    ) from None
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=pa.schema(
            [pa.field(f.name, f.type, True) for f in stored]))

    def read_results(self, name: str, where: str | None = None) -> pl.DataFrame | None:
        """A result table (filtered), or None when it was never written."""
        if not self.conn.has_table(name):
            return None
        return pl.from_arrow(self.conn.dataset(name).to_table(filter=where))  # type: ignore[return-value]

    def result_tables(self) -> list[str]:
        """Every result table in the store (tables that are neither reserved nor activations)."""
        reserved = set(RESERVED_TABLES)
        return sorted(n for n in self.conn.table_names() if n not in reserved and not n.startswith(ACTIVATION_PREFIX))
