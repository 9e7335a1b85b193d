"""Cross-model similarity: one model's point against another model's point on shared sentences.

Does a speech encoder's geometry match a text encoder's on the same sentences? For every pair
(depth of model A, depth of model B) and language, the rows of A's `modality_a` and B's
`modality_b` of the SAME sentence ids (ids both models store, within one corpus) are compared
with any registered measure: SVCCA and CKA compare sets of different widths as they are (CCA is
invariant to invertible linear maps of either side), and mutual k-NN across models is the
"platonic representation" measure (do two models agree on which sentences are neighbours?).
Every score carries the same random baseline, shuffled-row null and kept directions as the
within-model grids (`analyses.grids`).

Rows go to the `similarity` table with `kind = "cross-model"` and both models in the key
(`model`, `model_b`, `depth`, `depth_b`); the within-model summaries leave them out.
Both models' recordings are chosen exactly as a within-model analysis chooses them (one per
sentence id, seeded), in the same corpus: A's (`--corpus`, else A's largest), which B must hold.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np
import polars as pl

from actstore.analyses.aligned import (
    choose_depths,
    load_depth_sets,
    select_recordings,
    language_levels,
    stored_modalities,
)
from actstore.analyses.grids import KEY, GridOptions, _score_depth, check_grid_n
from actstore.analyses.results import current_rows, load_results, save_results
from actstore.analyses.similarity.batched import PairRequest, random_baseline
from actstore.errors import AnalysisInputError
from actstore.schema import SIMILARITY_TABLE
from actstore.store import Store

KIND = "cross-model"
RESULT_TABLE = SIMILARITY_TABLE
#: a cross-model row is identified by the within-model key plus the second model and its depth
CROSS_MODEL_KEY = (*KEY, "model_b", "depth_b")
#: one chart cell: a (model pair, depth pair, language) shows its latest computation
CELL = ("model", "model_b", "measure", "depth", "depth_b", "lang_a", "modality_a", "modality_b")


def _require_modality(store: Store, model: str, modality: str) -> None:
    have = stored_modalities(store, model)
    if modality not in have:
        raise AnalysisInputError(f"Model {model!r} stores no {modality} activations (only "
                                 f"{', '.join(sorted(have))}); pass another modality.")


def _shared_ids(sel_a, sel_b, langs: Sequence[str], modality_a: str, modality_b: str,
                n: int | None) -> dict[str, np.ndarray]:
    """Per language, the first N ids both models hold (N: the smallest language's count)."""
    shared = {lang: np.intersect1d(sel_a.ids(lang, modality_a), sel_b.ids(lang, modality_b)) for lang in langs}
    shared = {lang: ids for lang, ids in shared.items() if ids.size}
    if not shared:
        raise AnalysisInputError("The two models share no sentence id in any language; ingest the same "
                                 "sentences (same corpus and languages) into both.")
    smallest = min(ids.size for ids in shared.values())
    if n is not None and n > smallest:
        short = {lang: int(ids.size) for lang, ids in shared.items() if ids.size < n}
        raise AnalysisInputError(f"--n {n} exceeds the shared ids of {short}; use a smaller --n.")
    size = smallest if n is None else n
    if size < 3:
        raise AnalysisInputError(f"The two models share only {size} sentence ids in some language; at least "
                                 "3 are needed: ingest more sentences into both.")
    return {lang: ids[:size] for lang, ids in shared.items()}


def cross_model_grid(store: Store, model_a: str, model_b: str, *, modality_a: str = "speech",
                     modality_b: str = "text", depths_a: Sequence[str] | None = None,
                     depths_b: Sequence[str] | None = None, langs: Sequence[str] | None = None,
                     options: GridOptions = GridOptions(),
                     progress: Callable[[int], object] | None = None) -> pl.DataFrame:
    """Scores of every (depth of A, depth of B) x language on shared ids (rows not yet saved)."""
    check_grid_n(options)
    if model_a == model_b and modality_a == modality_b:
        raise AnalysisInputError("A model compared with itself in one modality scores 1 by construction; "
                                 "pass two models or two modalities.")
    for model, modality in ((model_a, modality_a), (model_b, modality_b)):
        _require_modality(store, model, modality)
    levels_a = language_levels(store, model_a, langs)
    levels_b = language_levels(store, model_b, langs)
    lang_list = [lang for lang in levels_a if lang in levels_b]
    if not lang_list:
        raise AnalysisInputError(f"Models {model_a!r} and {model_b!r} store no language in common.")
    chosen_a = choose_depths(store, model_a, depths_a, need=(modality_a,))
    chosen_b = choose_depths(store, model_b, depths_b, need=(modality_b,))
    sel_a = select_recordings(store, model_a, {modality_a: chosen_a[0].points[modality_a]}, lang_list,
                              recording=options.recording, seed=options.seed, corpus=options.corpus)
    sel_b = select_recordings(store, model_b, {modality_b: chosen_b[0].points[modality_b]}, lang_list,
                              recording=options.recording, seed=options.seed, corpus=sel_a.corpus)
    ids = _shared_ids(sel_a, sel_b, lang_list, modality_a, modality_b, options.n)
    sets_b = [load_depth_sets(store, model_b, d, sel_b, (modality_b,)) for d in chosen_b]
    random_init = store.is_random_init(model_a) or store.is_random_init(model_b)
    version = store.activation_version(model_a)
    now = datetime.now(timezone.utc)
    scoring = replace(options, workers=1)
    frames = []
    for depth_a in chosen_a:
        sets_a = load_depth_sets(store, model_a, depth_a, sel_a, (modality_a,))
        for depth_b, sb in zip(chosen_b, sets_b):
            vectors, requests, langs_used = {}, [], []
            for lang, lang_ids in ids.items():
                ka, kb = (lang, f"A:{modality_a}"), (lang, f"B:{modality_b}")
                vectors[ka] = sets_a.vectors[(lang, modality_a)]
                vectors[kb] = sb.vectors[(lang, modality_b)]
                requests.append(PairRequest(ka, sets_a.rows_for((lang, modality_a), lang_ids),
                                            kb, sb.rows_for((lang, modality_b), lang_ids)))
                langs_used.append(lang)
            scored, ci_low, ci_high = _score_depth(vectors, requests, scoring)
            frames.append(_rows(model_a, model_b, depth_a, depth_b, modality_a, modality_b, langs_used,
                                levels_a, vectors, requests, scored, ci_low, ci_high, options,
                                sel_a.corpus, random_init, version, now))
            if progress is not None:
                progress(len(requests))
    out = pl.concat(frames)
    return out.with_columns(*(pl.col(c).fill_nan(None) for c in ("score", "baseline", "null", "ci_low", "ci_high")))


def _rows(model_a, model_b, depth_a, depth_b, modality_a, modality_b, langs, levels, vectors, requests,
          scored, ci_low, ci_high, options: GridOptions, corpus, random_init, version, now) -> pl.DataFrame:
    """One depth pair's rows, in the `similarity` table's columns."""
    shapes = [(len(r.x_rows), vectors[r.x_key].shape[1], vectors[r.y_key].shape[1]) for r in requests]
    baselines = {s: random_baseline(*s, measure=options.measure, keep=options.keep, seed=options.seed,
                                    k=options.knn_k) for s in set(shapes)}
    m = len(requests)
    return pl.DataFrame({
        "model": model_a, "model_b": model_b, "random_init": random_init, "measure": options.measure,
        "kind": KIND, "depth": depth_a.name, "depth_b": depth_b.name, "point_order": depth_a.order,
        "point_order_b": depth_b.order, "layer": pl.Series([depth_a.layer] * m, dtype=pl.Int32),
        "point": depth_a.points[modality_a], "point_b": depth_b.points[modality_b],
        "lang_a": langs, "lang_b": langs, "modality_a": modality_a, "modality_b": modality_b,
        "resource_level_a": [levels[lang] for lang in langs], "resource_level_b": [levels[lang] for lang in langs],
        "n": scored["n"].astype(np.int32), "kx": scored["kx"].astype(np.int32), "ky": scored["ky"].astype(np.int32),
        "forced": scored["forced"].astype(np.int32),
        "degenerate": (options.measure == "pwcca") & np.isnan(scored["score"]),
        "score": scored["score"].astype(np.float64),
        "baseline": [baselines[s] for s in shapes],
        "null": scored["null"].astype(np.float64) if options.null else np.full(m, np.nan),
        "ci_low": ci_low, "ci_high": ci_high,
        "n_limit": pl.Series([options.n or 0] * m, dtype=pl.Int32), "keep": options.keep, "seed": options.seed,
        "knn_k": pl.Series([options.knn_k] * m, dtype=pl.Int32), "recording": options.recording,
        "corpus": corpus, "pairing": KIND, "store_version": version, "computed_at": now,
    })


def save_cross_model(store: Store, frame: pl.DataFrame) -> None:
    """Write cross-model rows to `similarity`, replacing stored rows with the same key."""
    save_results(store, RESULT_TABLE, frame, key=CROSS_MODEL_KEY)


def load_cross_model(store: Store, model_a: str, model_b: str | None = None, *,
                     measure: str | None = None) -> pl.DataFrame | None:
    """Stored cross-model rows of `model_a` (against `model_b`, or any), latest per cell."""
    frame = load_results(store, RESULT_TABLE, model_a)
    if frame is None or "model_b" not in frame.columns:
        return None
    frame = frame.filter(pl.col("kind") == KIND)
    if model_b is not None:
        frame = frame.filter(pl.col("model_b") == model_b)
    if measure is not None:
        frame = frame.filter(pl.col("measure") == measure)
    return current_rows(frame, CELL) if frame.height else None


def cross_model_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Per (model pair, depth A, depth B): mean score, baseline and null over languages."""
    rows = frame.filter(pl.col("kind") == KIND)
    return (rows.group_by("model", "model_b", "measure", "depth", "depth_b", "point_order", "point_order_b")
            .agg(pl.col("score").mean(), pl.col("baseline").mean(), pl.col("null").mean(),
                 pl.col("n").min(), pl.len().alias("languages"))
            .sort("point_order", "point_order_b"))
