"""The `sentences` table: sentence text by (source, split, lang, sentence_id), for tooltips and SQL.

Written with a keyed `merge_insert` on `SENTENCES_KEY`, the table's unenforced primary key, so
two ingests of the same language never store a text twice.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl
import pyarrow as pa

from actstore.schema import SENTENCES_KEY, SENTENCES_SCHEMA, SENTENCES_TABLE, sql_in
from actstore.store.connection import Connection


class SentenceTexts:
    """Write and read sentence texts."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def write_sentences(self, rows: pa.Table) -> None:
        """Upsert sentence texts (one commit)."""
        rows = rows.select(SENTENCES_SCHEMA.names).cast(SENTENCES_SCHEMA)
        if rows.num_rows == 0:
            return
        (self.conn.ensure_table(SENTENCES_TABLE, SENTENCES_SCHEMA).merge_insert(list(SENTENCES_KEY))
            .when_matched_update_all().when_not_matched_insert_all().execute(rows))

    def sentences(self, langs: Sequence[str] | None = None) -> pl.DataFrame:
        """Stored texts (of `langs`): source, split, lang, sentence_id, text."""
        if not self.conn.has_table(SENTENCES_TABLE):
            return pl.DataFrame(schema=pl.Schema(SENTENCES_SCHEMA))  # type: ignore[arg-type]
        flt = sql_in("lang", list(langs)) if langs else None
        return pl.from_arrow(self.conn.dataset(SENTENCES_TABLE).to_table(filter=flt))  # type: ignore
