"""The study's comparison across systems: per-model summaries that a report draws side by side.

The study compares SeamlessM4T v2, SONAR and SALMONN by a few numbers per model: the final-layer
cross-modal score overall and per resource level, the final-layer cross-lingual speech-speech and
text-text means, and the cross-modal curve over depth. Those are derived here from each model's
stored grid (the rows `actstore.analyses.report_data.report_frames` shows), with the means the
single-model report draws (`actstore.grid_means`, one definition for both; tests/test_grid_means.py
checks that they agree), so a comparison never disagrees with a model's own report.

"Final" is the sentence embedding (`pooled`) where a model has one -- the study's final SONAR
number -- else the deepest numbered layer that has the scores in question (SALMONN's L32, not the
LLM's `final_norm`). Models
with different layer counts are compared on relative depth, layer / deepest stored layer.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl

from actstore.grid_means import cross_lingual_summary, cross_modal_summary
from actstore.kinds import CROSS_MODAL, SYMMETRIC_KINDS
from actstore.store import Store
from actstore.analyses.aligned import model_depths
from actstore.analyses.grids import load_grid

#: the cross-lingual kinds the study sets side by side: the same-modality ones
FINAL_CROSS_LINGUAL_KINDS = SYMMETRIC_KINDS
#: the point that is a model's final output where it exists (SONAR's sentence embedding)
FINAL_POINT = "pooled"


def _final(rows: pl.DataFrame, layers: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """The rows of the final depth, per group `by`: the sentence embedding (`pooled`, SONAR's
    output and the study's final SONAR number) where a group has it, else its deepest numbered
    layer (not a layer-less point such as an LLM's final norm), else its highest point_order."""
    if rows.height == 0:
        return rows
    by = list(by)
    rank = (rows.join(layers, on="depth", how="left")
            .with_columns(pl.when(pl.col("depth") == FINAL_POINT).then(pl.lit(1 << 30))
                          .otherwise(pl.col("layer").fill_null(-1)).alias("_rank")))
    winner = (pl.col("_rank") == pl.col("_rank").max().over(by)) if by else (pl.col("_rank") == pl.col("_rank").max())
    rank = rank.filter(winner)
    top = pl.col("point_order").max().over(by) if by else pl.col("point_order").max()
    return rank.filter(pl.col("point_order") == top).drop("_rank", "layer")


def _layers(store: Store, model: str) -> pl.DataFrame:
    """depth -> layer number for the depths that have one (embeddings are layer 0 where stored so)."""
    rows = [(d.name, d.layer) for d in model_depths(store, model) if d.layer is not None]
    return pl.DataFrame(rows, schema={"depth": pl.String, "layer": pl.Int64}, orient="row")


def model_overview(store: Store, model: str, grid: pl.DataFrame | None) -> dict:
    """One row of the comparison's model table: random init, layers, languages, final depths."""
    layers = _layers(store, model)
    langs = (store.scan_activations(model, with_vectors=False).select(pl.col("lang").n_unique())
             .collect().item())
    final_cm = final_xl = None
    if grid is not None and grid.height:
        cm = grid.filter(pl.col("kind") == CROSS_MODAL)
        if cm.height:
            final_cm = str(_final(cm, layers)["depth"][0])
        xl = grid.filter(pl.col("kind").is_in(list(FINAL_CROSS_LINGUAL_KINDS)))
        if xl.height:
            final_xl = str(_final(xl, layers)["depth"][0])
    return {"model": model, "random_init": bool(store.is_random_init(model)),
            "layers": int(layers["layer"].max()) if layers.height else 0, "languages": int(langs),
            "final_cross_modal": final_cm, "final_cross_lingual": final_xl}


def comparison_frames(store: Store, models: Sequence[str], *, measure: str = "svcca",
                      grids: dict[str, pl.DataFrame | None] | None = None) -> dict[str, pl.DataFrame]:
    """The comparison's frames for `models` (in the given order).

    - `models`: model, random_init, layers (deepest stored layer), languages, final depths;
    - `final_cross_modal`: model, group (all/high/medium/low), depth, score, baseline, null,
      languages, at each model's final cross-modal depth;
    - `final_cross_lingual`: model, kind (speech-speech/text-text), depth, score, baseline, null,
      pairs, at each kind's final depth;
    - `cross_modal_curves`: model, depth, layer, rel_depth (layer / deepest stored layer), score,
      baseline, null, languages: the all-languages cross-modal mean per layer.
    `grids` are the similarity rows a report shows per model (`report_frames(...)["similarity"]`);
    read from the store where not given.
    """
    grids = dict(grids or {})
    overview, cm_final, xl_final, curves = [], [], [], []
    for model in models:
        store.require_model(model)
        grid = grids[model] if model in grids else load_grid(store, model, measure=measure)
        if grid is not None:
            grid = grid.filter(pl.col("measure") == measure)
        overview.append(model_overview(store, model, grid))
        if grid is None or grid.height == 0:
            continue
        layers = _layers(store, model)
        if grid.filter(pl.col("kind") == CROSS_MODAL).height:
            summary = cross_modal_summary(grid)
            cm_final.append(_final(summary, layers).select(
                "model", "group", "depth", "score", "baseline", "null", "languages"))
            deepest = layers["layer"].max() if layers.height else None
            if deepest:
                curves.append(summary.filter(pl.col("group") == "all").join(layers, on="depth")
                              .with_columns((pl.col("layer") / deepest).alias("rel_depth"))
                              .select("model", "depth", "layer", "rel_depth", "score", "baseline",
                                      "null", "languages"))
        xl = grid.filter(pl.col("kind").is_in(list(FINAL_CROSS_LINGUAL_KINDS)))
        if xl.height:
            xl_final.append(_final(cross_lingual_summary(xl), layers, ["kind"]).select(
                "model", "kind", "depth", "score", "baseline", "null", "pairs"))

    def stacked(parts: list[pl.DataFrame], schema: dict) -> pl.DataFrame:
        return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame(schema=schema)

    num = {"score": pl.Float64, "baseline": pl.Float64, "null": pl.Float64}
    return {
        "models": pl.DataFrame(overview, schema={
            "model": pl.String, "random_init": pl.Boolean, "layers": pl.Int64, "languages": pl.Int64,
            "final_cross_modal": pl.String, "final_cross_lingual": pl.String}),
        "final_cross_modal": stacked(cm_final, {"model": pl.String, "group": pl.String,
                                                "depth": pl.String, **num, "languages": pl.UInt32}),
        "final_cross_lingual": stacked(xl_final, {"model": pl.String, "kind": pl.String,
                                                  "depth": pl.String, **num, "pairs": pl.UInt32}),
        "cross_modal_curves": stacked(curves, {"model": pl.String, "depth": pl.String, "layer": pl.Int64,
                                               "rel_depth": pl.Float64, **num, "languages": pl.UInt32}),
    }

