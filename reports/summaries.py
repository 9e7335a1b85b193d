"""Shape analysis frames into the small tables the charts draw: orders, means, limits, samples.

Everything numeric a reader sees in the report that is not a stored score is computed here, in
Polars, where it can be tested against known answers: means over languages per depth, averages
that exclude same-language pairs, per-language retrieval tables, the t-SNE subsample. The charts
only filter and encode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from actstore.catalogue import RESOURCE_LEVELS
from actstore.grid_means import cross_lingual_summary, cross_modal_summary
from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL, SYMMETRIC_KINDS
RETRIEVAL_METRICS = {
    "p_at_1": "P@1",
    "recall_at_5": "recall@5",
    "recall_at_10": "recall@10",
    "xsim_ok": "1 - xsim error",
}


def depth_order(*frames: pl.DataFrame | None) -> list[str]:
    """Depth labels sorted by their smallest `point_order` (e.g. embed, L1, ..., L24, adaptor)."""
    parts = [f.select("depth", "point_order") for f in frames if f is not None and "point_order" in f.columns]
    if not parts:
        return []
    order = (
        pl.concat(parts).group_by("depth").agg(pl.col("point_order").min())
        .sort("point_order", "depth")
    )
    return order["depth"].to_list()


def language_order(languages: pl.DataFrame | None, *frames: pl.DataFrame | None,
                   columns: tuple[str, ...] = ("lang", "lang_a", "lang_b")) -> list[str]:
    """Languages grouped by resource level (high, medium, low, unknown), then by code.

    Taken from the provenance languages table, plus any language that only the frames mention.
    """
    rank = {level: i for i, level in enumerate(RESOURCE_LEVELS)}
    levels: dict[str, str] = {}
    if languages is not None:
        for lang, level in languages.select("lang", "resource_level").iter_rows():
            levels[str(lang)] = str(level or "")
    for frame in frames:
        if frame is None:
            continue
        for column in columns:
            if column in frame.columns:
                for lang in frame[column].drop_nulls().unique().to_list():
                    levels.setdefault(str(lang), "")
    return sorted(levels, key=lambda lang: (rank.get(levels[lang], len(rank)), lang))


def rounded(frame: pl.DataFrame, digits: int = 4) -> pl.DataFrame:
    """Round every float column (shrinks the inlined JSON; 4 digits is finer than any CI)."""
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).round(digits))


def cross_modal_series(similarity: pl.DataFrame) -> pl.DataFrame:
    """The cross-modal line chart's data: `actstore.grid_means.cross_modal_summary` in long format.

    One row per (measure, depth, group, series): `series` is "score" for every group ("all",
    "high", "medium", "low") and "random baseline" / "shuffled null" (the means of `baseline` and
    `null`) for "all" only. `ci_low`/`ci_high` are the means of the per-language bootstrap bounds
    (null when not bootstrapped); `n_langs` counts the languages averaged. The means themselves
    are the core summary's, the same numbers `actstore analyze` prints and the comparison uses.
    """
    wide = cross_modal_summary(similarity)
    if wide.height == 0:
        return pl.DataFrame()
    keys = ["measure", "depth", "point_order", "group"]
    no_ci = [pl.lit(None, pl.Float64).alias("ci_low"), pl.lit(None, pl.Float64).alias("ci_high")]
    overall = wide.filter(pl.col("group") == "all")
    long = [
        wide.select(*keys, pl.lit("score").alias("series"), pl.col("score").alias("value"),
                    "ci_low", "ci_high", pl.col("languages").alias("n_langs")),
        overall.select(*keys, pl.lit("random baseline").alias("series"), pl.col("baseline").alias("value"),
                       *no_ci, pl.col("languages").alias("n_langs")),
        overall.select(*keys, pl.lit("shuffled null").alias("series"), pl.col("null").alias("value"),
                       *no_ci, pl.col("languages").alias("n_langs")),
    ]
    cast = [f.with_columns(pl.col("value", "ci_low", "ci_high").cast(pl.Float64),
                           pl.col("n_langs").cast(pl.Int64)) for f in long]
    return pl.concat(cast).drop_nulls("value").sort("measure", "point_order", "group", "series")


def cross_modal_rows(similarity: pl.DataFrame, measure: str) -> pl.DataFrame:
    """Per-language cross-modal rows of one measure, with only the columns the heatmap shows
    (the bootstrap interval only when it was computed)."""
    rows = similarity.filter((pl.col("kind") == CROSS_MODAL) & (pl.col("measure") == measure))
    ci = ["ci_low", "ci_high"] if rows["ci_low"].null_count() < rows.height else []
    return rows.select("depth", "point_order", pl.col("lang_a").alias("lang"), "resource_level_a",
                       "score", *ci, "baseline", "null", "n", "kx", "ky", "forced")


def cross_lingual_rows(similarity: pl.DataFrame, measure: str,
                       langs: list[str] | None = None) -> pl.DataFrame:
    """Cross-lingual pair rows of one measure (speech-speech, text-text, speech-text).

    speech-speech and text-text are symmetric and stored once per pair; with `langs` (the page's
    language order) each such pair is turned so that lang_a comes later in that order than
    lang_b, which draws one clean lower triangle whatever order the analysis stored pairs in.
    """
    rows = similarity.filter(
        pl.col("kind").is_in(list(CROSS_LINGUAL_KINDS)) & (pl.col("measure") == measure)
    ).select("kind", "depth", "point_order", "lang_a", "lang_b", "score", "null", "n", "kx", "ky", "forced")
    if langs is None:
        return rows
    rank = {lang: i for i, lang in enumerate(langs)}
    position = lambda c: pl.col(c).replace_strict(rank, default=len(rank), return_dtype=pl.Int64)
    swap = pl.col("kind").is_in(list(SYMMETRIC_KINDS)) & (position("lang_a") < position("lang_b"))
    return rows.with_columns(
        pl.when(swap).then(pl.col("lang_b")).otherwise(pl.col("lang_a")).alias("lang_a"),
        pl.when(swap).then(pl.col("lang_a")).otherwise(pl.col("lang_b")).alias("lang_b"),
        pl.when(swap).then(pl.col("ky")).otherwise(pl.col("kx")).alias("kx"),
        pl.when(swap).then(pl.col("kx")).otherwise(pl.col("ky")).alias("ky"),
    )


def chart_columns(frame: pl.DataFrame, drop: tuple[str, ...] = ("point_order",)) -> pl.DataFrame:
    """Drop columns the charts do not read (ordering is passed to the charts as a list)."""
    return frame.drop([c for c in drop if c in frame.columns])


def cross_lingual_means(rows: pl.DataFrame) -> pl.DataFrame:
    """Mean score and null per (kind, depth) over language pairs with lang_a != lang_b (the study's
    average): `actstore.grid_means.cross_lingual_summary`, with the columns the chart reads."""
    return cross_lingual_summary(rows).select("kind", "depth", "point_order", "score", "null",
                                              pl.col("pairs").alias("n_pairs"))


def limit_depths(frame: pl.DataFrame, max_rows: int) -> tuple[pl.DataFrame, list[str]]:
    """Keep evenly spaced depths (always the first and the last) so that at most `max_rows` remain.

    Returns the frame and the depths dropped (empty when nothing was dropped). Large grids (100
    languages x 100 languages x 25 depths) would otherwise make a report of tens of megabytes.
    """
    depths = depth_order(frame)
    if frame.height <= max_rows or len(depths) <= 2:
        return frame, []
    per_depth = frame.height / len(depths)
    keep_n = max(2, int(max_rows // per_depth))
    if keep_n >= len(depths):
        return frame, []
    picks = sorted({int(round(i)) for i in np.linspace(0, len(depths) - 1, keep_n)})
    keep = [depths[i] for i in picks]
    return frame.filter(pl.col("depth").is_in(keep)), [d for d in depths if d not in keep]


def retrieval_rows(retrieval: pl.DataFrame) -> pl.DataFrame:
    """Retrieval rows as (panel, query lang, target lang) with every metric in [0, 1], higher = better.

    `panel` names the query and target modality ("speech→text"); direction "a->b" queries with
    lang_a, "b->a" with lang_b. For speech-speech and text-text the two directions fill the two
    triangles of one matrix. `xsim_ok` = 1 - xsim error.
    """
    forward = pl.col("direction") == "a->b"
    first, second = pl.col("kind").str.split("-").list.first(), pl.col("kind").str.split("-").list.last()
    return retrieval.select(
        pl.when(forward).then(pl.format("{}→{}", first, second))
        .otherwise(pl.format("{}→{}", second, first)).alias("panel"),
        "depth", "point_order",
        pl.when(forward).then(pl.col("lang_a")).otherwise(pl.col("lang_b")).alias("query"),
        pl.when(forward).then(pl.col("lang_b")).otherwise(pl.col("lang_a")).alias("target"),
        "n", "p_at_1", "recall_at_5", "recall_at_10", (1 - pl.col("xsim_error")).alias("xsim_ok"),
    )


def retrieval_table(rows: pl.DataFrame, depth: str | None = None) -> tuple[str, pl.DataFrame]:
    """At `depth` (default: the deepest): per query language and panel, P@1 on its own language and
    mean P@1 over the other target languages. Returns (depth, table with one row per language)."""
    deepest = depth or depth_order(rows)[-1]
    at = rows.filter(pl.col("depth") == deepest)
    same = at.filter(pl.col("query") == pl.col("target")).select(
        "query", pl.format("{} P@1 same lang", pl.col("panel")).alias("column"), pl.col("p_at_1").alias("v"))
    other = at.filter(pl.col("query") != pl.col("target")).group_by("query", "panel").agg(
        pl.col("p_at_1").mean().alias("v")).select(
        "query", pl.format("{} P@1 other langs", pl.col("panel")).alias("column"), "v")
    long = pl.concat([same, other])
    table = long.pivot(on="column", index="query", values="v", aggregate_function="mean")
    ordered = ["query", *sorted(c for c in table.columns if c != "query")]
    return deepest, table.select(ordered).rename({"query": "lang"}).sort("lang")


def tsne_sample(tsne: pl.DataFrame, max_points_per_depth: int, seed: int = 0,
                text_chars: int = 160) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
    """Subsample t-SNE points per depth and move sentence texts into a lookup table.

    Sampling picks whole sentence ids (seeded), so a sentence keeps all its languages and
    modalities and the parallel structure stays visible. Per point only (depth, key, x, y) is
    kept; language, modality, sentence id and text are stored once per key in `texts` (they are
    the same at every depth), the text cut to `text_chars` characters. Returns (points, texts,
    note or None when nothing was dropped).
    """
    per_depth = tsne.group_by("depth").len()["len"].max()
    note = None
    if per_depth is not None and per_depth > max_points_per_depth:
        ids = tsne["sentence_id"].unique().sort()
        per_id = per_depth / len(ids)
        keep_n = max(1, int(max_points_per_depth // per_id))
        rng = np.random.default_rng(seed)
        keep = ids.gather(np.sort(rng.choice(len(ids), size=min(keep_n, len(ids)), replace=False)))
        tsne = tsne.filter(pl.col("sentence_id").is_in(keep.implode()))
        note = (f"Showing {keep.len()} of {len(ids)} sentences (seeded random sample): at most "
                f"{max_points_per_depth:,} points per depth keep the report small; "
                f"the full coordinates are in the t-SNE results table.")
    keys = tsne.select("lang", "modality", "sentence_id").unique().sort("lang", "modality", "sentence_id")
    keys = keys.with_row_index("key")
    texts = keys.join(tsne.unique(["lang", "modality", "sentence_id"]).select(
        "lang", "modality", "sentence_id", "text"), on=["lang", "modality", "sentence_id"]).select(
        "key", "lang", "modality", pl.col("sentence_id").cast(pl.Utf8).alias("sid"),
        pl.col("text").cast(pl.Utf8).str.slice(0, text_chars)).sort("key")
    points = tsne.join(keys, on=["lang", "modality", "sentence_id"]).select(
        "depth", "point_order", "key", pl.col("x").round(2), pl.col("y").round(2),
    ).sort("point_order", "key")
    return points, texts, note


def best_language_neuron(neurons_top: pl.DataFrame) -> pl.DataFrame:
    """Per depth and language: the AP of its most selective dimension (rank 1 over modalities)."""
    return (
        neurons_top.filter(pl.col("target_kind") == "language")
        .group_by("depth", "point_order", "target", "modality").agg(pl.col("ap").max())
        .sort("target", "modality", "point_order")
    )


def value_range(frame: pl.DataFrame, column: str) -> tuple[float, float]:
    """(min, max) of a column, widened to a non-empty interval, for a fixed colour domain."""
    lo, hi = frame[column].min(), frame[column].max()
    lo, hi = float(lo if lo is not None else 0.0), float(hi if hi is not None else 1.0)
    return (lo, hi) if hi > lo else (lo - 0.005, hi + 0.005)


def largest_change(grid: pl.DataFrame) -> float:
    """Largest |score(B) - score(A)| any pair can show between two depths: max over pairs of
    (max - min over depths). Bounds the delta heatmaps' symmetric colour domain."""
    spread = grid.group_by("kind", "lang_a", "lang_b").agg(
        (pl.col("score").max() - pl.col("score").min()).alias("spread"))["spread"].max()
    return float(spread) if spread else 0.01


def opening_depth(frame: pl.DataFrame, column: str, wanted: Sequence[str]) -> str:
    """The depth a chart opens on: the deepest one where every value of `wanted` in `column` has rows.

    A model's last depth may exist for one modality only (SeamlessM4T's `speech.adaptor`): opening
    there leaves every text panel empty. When no depth has them all, the deepest depth with the
    most of them.
    """
    depths = depth_order(frame)
    present = {d: set(v) & set(wanted) for d, v in
               frame.group_by("depth").agg(pl.col(column).unique()).iter_rows()}
    most = max(len(present.get(d, ())) for d in depths)
    return [d for d in depths if len(present.get(d, ())) == most][-1]
