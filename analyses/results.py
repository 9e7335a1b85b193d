"""Result tables: analyses write Polars frames into the store, replacing the rows they recompute.

Every result row carries `model`, `depth` and `store_version` (the activation tables' version it
was computed from) and `computed_at`; `random_init` marks rows of random-initialised models.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

import polars as pl

from actstore.schema import sql_in, sql_quote
from actstore.store import Store


def stamp(frame: pl.DataFrame, store: Store, model: str) -> pl.DataFrame:
    """Add model, random_init, store_version and computed_at columns to a result frame."""
    return frame.with_columns(
        pl.lit(model).alias("model"),
        pl.lit(store.is_random_init(model)).alias("random_init"),
        pl.lit(store.activation_version(model)).alias("store_version"),
        pl.lit(datetime.now(timezone.utc)).alias("computed_at"),
    )


def save_results(store: Store, table: str, frame: pl.DataFrame, *, keys: Sequence[str] = ("model", "depth")) -> None:
    """Write `frame` to `table`, first deleting stored rows that share its values of `keys`."""
    if frame.height == 0:
        return
    clauses = []
    for key in keys:
        values = frame[key].unique().to_list()
        clauses.append(f"{key} = {sql_quote(values[0])}" if len(values) == 1 else sql_in(key, values))
    store.write_results(table, frame, replace_where=" AND ".join(clauses))


def load_results(store: Store, table: str, model: str) -> pl.DataFrame | None:
    """Stored rows of one model, or None when the table was never written."""
    frame = store.read_results(table, f"model = {sql_quote(model)}")
    if frame is None or frame.height == 0:
        return None
    return frame
