"""A study-sized synthetic report: the catalogue's 36 languages, a speech-only last depth, small n.

Shaped like the demo's tiny SeamlessM4T v2 store, where a newcomer found the report hard to read:
- depths embed, L2, L4, L6 exist for speech and text; `adaptor` (the speech adaptor) for speech only,
  so every kind with text has no row there;
- Japanese has text but no speech (espeak-ng cannot read kanji), so it has no cross-modal,
  speech-speech or speech-text row;
- n = 50 sentences with kx = ky = 40 kept directions: the random baseline is high (SVCCA of noise
  at that shape), above most scores.
Values are simple formulas (`score`), built column-wise so the frames stay quick to make.
"""

from __future__ import annotations

import polars as pl

import _report_fixtures as fx
from actstore.catalogue import Catalogue
from actstore.reports import ReportInputs

MODEL = fx.MODEL
DEPTHS = ("embed", "L2", "L4", "L6", "adaptor")
SPEECH_ONLY = "adaptor"
NO_SPEECH = "jpn"
N = 50


def languages() -> pl.DataFrame:
    rows = [(l.code, l.name, l.resource_level, l.script, l.family) for l in Catalogue.load()]
    frame = pl.DataFrame(rows, schema=["lang", "name", "resource_level", "script", "family"], orient="row")
    return frame.with_columns(pl.when(pl.col("lang") == NO_SPEECH).then(0).otherwise(N).alias("n_speech"),
                              pl.lit(N).alias("n_text"))


LANGS = tuple(languages()["lang"].to_list())


def _frame(kinds: dict[str, tuple[str, str]], symmetric: tuple[str, ...]) -> pl.DataFrame:
    """Rows (kind, depth, lang_a, lang_b, modality_a, modality_b) that exist in the store."""
    langs = pl.DataFrame({"lang_a": LANGS, "i": range(len(LANGS))})
    pairs = langs.join(langs.rename({"lang_a": "lang_b", "i": "j"}), how="cross")
    depths = pl.DataFrame({"depth": DEPTHS, "point_order": range(len(DEPTHS))})
    out = []
    for kind, (ma, mb) in kinds.items():
        rows = pairs.join(depths, how="cross").with_columns(
            pl.lit(kind).alias("kind"), pl.lit(ma).alias("modality_a"), pl.lit(mb).alias("modality_b"))
        if kind in symmetric:
            rows = rows.filter(pl.col("i") > pl.col("j"))
        elif kind == "cross-modal":
            rows = rows.filter(pl.col("i") == pl.col("j"))
        if "text" in (ma, mb):
            rows = rows.filter(pl.col("depth") != SPEECH_ONLY)
        if ma == "speech":
            rows = rows.filter(pl.col("lang_a") != NO_SPEECH)
        if mb == "speech":
            rows = rows.filter(pl.col("lang_b") != NO_SPEECH)
        out.append(rows)
    return pl.concat(out)


def similarity() -> pl.DataFrame:
    kinds = {"cross-modal": ("speech", "text"), "speech-speech": ("speech", "speech"),
             "text-text": ("text", "text"), "speech-text": ("speech", "text")}
    levels = languages().select(pl.col("lang").alias("lang_a"), pl.col("resource_level").alias("resource_level_a"))
    rows = _frame(kinds, ("speech-speech", "text-text")).join(levels, on="lang_a")
    score = 0.45 + 0.04 * pl.col("point_order") + 0.002 * pl.col("i") + 0.001 * pl.col("j")
    return rows.select(
        pl.lit(MODEL).alias("model"), pl.lit("svcca").alias("measure"), "kind",
        pl.format("{}.{}", pl.col("modality_a"), pl.col("depth")).alias("point"), "depth", "point_order",
        "lang_a", "lang_b", "modality_a", "modality_b", "resource_level_a", pl.lit(N).alias("n"),
        pl.lit(40).alias("kx"), pl.lit(40).alias("ky"), pl.lit(31, pl.Int32).alias("forced"),
        score.alias("score"), pl.lit(0.72).alias("baseline"), pl.lit(0.7).alias("null"),
        pl.lit(None, pl.Float64).alias("ci_low"), pl.lit(None, pl.Float64).alias("ci_high"))


def retrieval() -> pl.DataFrame:
    kinds = {"speech-text": ("speech", "text"), "speech-speech": ("speech", "speech"), "text-text": ("text", "text")}
    rows = _frame(kinds, ("speech-speech", "text-text"))
    rows = pl.concat([rows.with_columns(pl.lit(d).alias("direction")) for d in ("a->b", "b->a")])
    p1 = (0.1 + 0.15 * pl.col("point_order") - 0.002 * (pl.col("i") - pl.col("j")).abs()).clip(0, 1)
    return rows.select(
        pl.lit(MODEL).alias("model"), pl.format("{}.{}", pl.col("modality_a"), pl.col("depth")).alias("point"),
        "depth", "point_order", "kind", "lang_a", "lang_b", "direction", pl.lit(N).alias("n"),
        p1.alias("p_at_1"), (p1 + 0.1).clip(0, 1).alias("recall_at_5"), (p1 + 0.15).clip(0, 1).alias("recall_at_10"),
        (1 - p1).alias("xsim_error"))


def _per_language(modalities: tuple[str, ...]) -> pl.DataFrame:
    langs = pl.DataFrame({"lang": LANGS, "i": range(len(LANGS))})
    depths = pl.DataFrame({"depth": DEPTHS, "point_order": range(len(DEPTHS))})
    rows = langs.join(depths, how="cross").join(pl.DataFrame({"modality": modalities}), how="cross")
    return rows.filter(~((pl.col("modality") == "text") & (pl.col("depth") == SPEECH_ONLY))
                       & ~((pl.col("modality") == "speech") & (pl.col("lang") == NO_SPEECH)))


def neurons_top(ranks: int = 3) -> pl.DataFrame:
    rows = _per_language(("speech", "text")).join(pl.DataFrame({"rank": range(1, ranks + 1)}), how="cross")
    return rows.select(
        pl.lit(MODEL).alias("model"), "depth", "point_order", pl.lit("language").alias("target_kind"),
        pl.col("lang").alias("target"), "modality", ((7 * pl.col("i") + pl.col("rank")) % 256).alias("dim"),
        (0.9 - 0.02 * pl.col("rank") - 0.01 * pl.col("point_order") - 0.003 * pl.col("i")).alias("ap"), "rank")


def concentration() -> pl.DataFrame:
    return _per_language(("speech", "text")).select(
        pl.lit(MODEL).alias("model"), "depth", "point_order", "lang", "modality",
        (0.3 + 0.03 * pl.col("point_order") + 0.005 * pl.col("i")).alias("gini"))


def neurons_overlap() -> pl.DataFrame:
    rows = _per_language(("speech",)).filter(pl.col("depth") != SPEECH_ONLY)
    rows = rows.join(pl.DataFrame({"k": [10, 100]}), how="cross")
    return rows.select(pl.lit(MODEL).alias("model"), "depth", "lang", "k",
                       (pl.col("k") * (0.1 + 0.1 * pl.col("point_order"))).round().cast(pl.Int64).alias("shared"))


def tsne(per_language: int = 4) -> pl.DataFrame:
    rows = _per_language(("speech", "text")).join(pl.DataFrame({"s": range(per_language)}), how="cross")
    return rows.select(
        pl.lit(MODEL).alias("model"), "depth", "point_order", "modality", "lang",
        (1000 + pl.col("s")).alias("sentence_id"), (pl.col("i") * 2.0 + pl.col("s")).alias("x"),
        (pl.col("point_order") * 3.0 - pl.col("s")).alias("y"), pl.format("sentence {}", pl.col("s")).alias("text"),
        pl.lit(1.2).alias("kl_divergence"))


def provenance() -> dict:
    prov = fx.provenance(random_init=True)
    return {**prov, "languages": languages()}


def wide_inputs() -> ReportInputs:
    return ReportInputs(provenance=provenance(), similarity=similarity(), retrieval=retrieval(), tsne=tsne(),
                        neurons_top=neurons_top(), neurons_overlap=neurons_overlap(),
                        concentration=concentration())
