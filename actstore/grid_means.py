"""The means a similarity grid is read by: one definition for the analyses and the report.

`actstore analyze` prints them, the cross-system comparison picks its final-depth numbers from
them, and the report draws them; all of them call these two functions (core, because reports may
not import analyses), so the terminal, the comparison and the report cannot disagree.

- cross-modal: per depth, the mean over languages ("all") and per resource level (only the
  catalogue's levels, high/medium/low: a language ingested without a level is in "all" only);
- cross-lingual: per kind and depth, the mean over language pairs without same-language pairs
  (for speech-speech and text-text those compare a set with itself; for speech-text they are the
  cross-modal numbers).

Grouping keys are whichever of `model` and `measure` the frame has, plus the kind (cross-lingual)
and depth; `forced` (the most correlations forced to 1 among the scores averaged) is carried
when the frame has it.
"""

from __future__ import annotations

import polars as pl

from actstore.catalogue import RESOURCE_LEVELS
from actstore.kinds import CROSS_MODAL


def _keys(frame: pl.DataFrame, *inner: str) -> list[str]:
    return [c for c in ("model", "measure") if c in frame.columns] + [*inner, "depth", "point_order"]


def _means(frame: pl.DataFrame, *columns: str) -> list[pl.Expr]:
    """Means of the columns the frame has, and the largest `forced` count where it is recorded."""
    out = [pl.col(c).mean() for c in columns if c in frame.columns]
    return out + ([pl.col("forced").max()] if "forced" in frame.columns else [])


def cross_modal_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Per depth: mean score, baseline, null and bootstrap bounds over the cross-modal rows, for all
    languages (group "all") and per resource level; `languages` counts the languages averaged."""
    xm = frame.filter(pl.col("kind") == CROSS_MODAL)
    keys = _keys(xm)
    aggs = [*_means(xm, "score", "baseline", "null", "ci_low", "ci_high"),
            pl.col("lang_a").n_unique().cast(pl.UInt32).alias("languages")]
    overall = xm.group_by(keys).agg(aggs).with_columns(pl.lit("all").alias("group"))
    per_level = (xm.filter(pl.col("resource_level_a").is_in(list(RESOURCE_LEVELS)))
                 .group_by([*keys, "resource_level_a"]).agg(aggs)
                 .rename({"resource_level_a": "group"}))
    return pl.concat([overall, per_level.select(overall.columns)]).sort(
        [c for c in keys if c not in ("depth", "point_order")] + ["point_order", "group"])


def cross_lingual_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Per kind and depth: mean score, baseline and null over language pairs, same-language pairs
    left out; `pairs` counts the pairs averaged."""
    xl = frame.filter((pl.col("kind") != CROSS_MODAL) & (pl.col("lang_a") != pl.col("lang_b")))
    keys = _keys(xl, "kind")
    return (xl.group_by(keys)
            .agg(*_means(xl, "score", "baseline", "null"), pl.len().alias("pairs"))
            .sort([c for c in keys if c not in ("kind", "depth", "point_order")] + ["kind", "point_order"]))
