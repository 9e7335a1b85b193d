"""Result tables: analyses write Polars frames into the store, replacing exactly what they recompute.

Every result row carries `model`, `depth` and `store_version` (the activation tables' version it
was computed from) and `computed_at`; `random_init` marks rows of random-initialised models.

Each analysis names its rows' KEY: everything that identifies a number (model, measure, kind,
depth, the language pair or language, the requested n and the options that change the number).
`save_results` upserts on that key in one commit (`Store.write_results`), so a rerun on a subset
of languages replaces that subset's rows and leaves the others. Results that only make sense as
a whole (a t-SNE map is one embedding; a language's selective neurons are ranked against the
other languages of the run) carry the run's language set in a `langs` column and are replaced
unit by unit (`unit_by`).

Tables may then hold several rows for one chart cell (other options, other language sets).
`current_rows` and `widest_units` pick what a report shows: per cell the latest computation, per
depth the unit computed over the most languages.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

import polars as pl

from actstore.schema import sql_quote
from actstore.store import Store


def stamp(frame: pl.DataFrame, store: Store, model: str) -> pl.DataFrame:
    """Add model, random_init, store_version and computed_at columns to a result frame."""
    return frame.with_columns(
        pl.lit(model).alias("model"),
        pl.lit(store.is_random_init(model)).alias("random_init"),
        pl.lit(store.activation_version(model)).alias("store_version"),
        pl.lit(datetime.now(timezone.utc)).alias("computed_at"),
    )


def lang_set(langs: Sequence[str]) -> str:
    """The `langs` value of a set-level result: its languages, sorted, comma-separated."""
    return ",".join(sorted(set(langs)))


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return sql_quote(value)


def unit_filter(frame: pl.DataFrame, unit_by: Sequence[str]) -> str:
    """A filter matching the stored rows of the units (distinct `unit_by` values) in `frame`."""
    combos = frame.select(list(unit_by)).unique().sort(list(unit_by)).iter_rows()
    return " OR ".join(
        "(" + " AND ".join(f"{col} = {_literal(v)}" for col, v in zip(unit_by, combo)) + ")"
        for combo in combos
    )


def save_results(store: Store, table: str, frame: pl.DataFrame, *, key: Sequence[str],
                 unit_by: Sequence[str] | None = None) -> None:
    """Upsert `frame` into `table` on `key`, in one commit.

    With `unit_by`, stored rows of the same units (same `unit_by` values) that `frame` no
    longer holds are deleted in that commit: the unit is replaced as a whole.
    """
    if frame.height == 0:
        return
    unit = unit_filter(frame, unit_by) if unit_by else None
    store.write_results(table, frame, key=key, unit=unit)


def current_rows(frame: pl.DataFrame | None, cell: Sequence[str]) -> pl.DataFrame | None:
    """Per `cell`, the most recently computed row (rows of older option sets stay in the table)."""
    if frame is None or frame.height == 0 or "computed_at" not in frame.columns:
        return frame
    return (frame.sort("computed_at", nulls_last=False)
            .unique(list(cell), keep="last", maintain_order=True))


def widest_units(frame: pl.DataFrame | None, per: Sequence[str] = ("model", "depth")) -> pl.DataFrame | None:
    """Per `per` group, the rows of the unit computed over the most languages (latest on ties).

    Rows written before units existed (no `langs` value) count as one unit of their own.
    """
    if frame is None or frame.height == 0 or "langs" not in frame.columns:
        return frame
    units = (frame.group_by([*per, "langs"])
             .agg(pl.col("computed_at").max().alias("_at"))
             .with_columns(pl.col("langs").str.count_matches(",").fill_null(-1).alias("_width"))
             .sort("_width", "_at", nulls_last=False)
             .unique(list(per), keep="last")
             .select(*per, "langs"))
    return frame.join(units, on=[*per, "langs"], how="semi", nulls_equal=True)


def missing_languages(frame: pl.DataFrame | None, langs: Sequence[str]) -> list[str]:
    """Languages of `langs` that no row of `frame` covers: a non-empty answer means `frame` is a
    subset (e.g. a rerun with --langs eng,fra on an empty table), not the model's whole grid."""
    have: set[str] = set()
    if frame is not None:
        for column in ("lang_a", "lang_b", "lang"):
            if column in frame.columns:
                have |= set(frame[column].drop_nulls().to_list())
    return sorted(set(langs) - have)


def load_results(store: Store, table: str, model: str) -> pl.DataFrame | None:
    """Stored rows of one model, or None when the table was never written."""
    frame = store.read_results(table, f"model = {sql_quote(model)}")
    if frame is None or frame.height == 0:
        return None
    return frame
