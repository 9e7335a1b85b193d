"""Similarity grids over a stored model: cross-modal and cross-lingual, per depth.

The study's procedure and why it is fast: docs/ARCHITECTURE.md, "Analyses".

- cross-modal: SVCCA(speech, text) per depth and language on the first N shared ids; means over
  languages and per resource level come from `actstore.grid_means.cross_modal_summary`.
- cross-lingual: speech-speech and text-text (lower triangle) and speech-text (full matrix) per
  depth on each pair's shared ids; means excluding same-language pairs and deltas between depths
  come from `actstore.grid_means.cross_lingual_summary` (the report draws deltas between depths).
Beside every score: kx and ky (kept directions), `forced` (canonical correlations that are 1 by
construction, max(0, kx + ky - span), span = n - 1 unless rows repeat; see `similarity.forced`),
`degenerate` (PWCCA only: the score is undefined, stored as null, because two or more
correlations are 1), a random baseline of the same shapes, the shuffled-row null, and
(optionally) a confidence interval for the score's mean at n (`similarity.intervals`).
`forced_warning` turns a grid with forced correlations into one sentence for the user.

The heavy lifting is `actstore.analyses.similarity.batched.score_pairs`: one reduction per set and row
subset, shared by every score that uses it (docs/ARCHITECTURE.md, "Analyses").
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Literal, Sequence

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from actstore.errors import AnalysisInputError
from actstore.schema import SIMILARITY_TABLE
from actstore.store import Store
from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL
from actstore.analyses.aligned import (
    language_levels,
    stored_modalities,
    PairSpec,
    choose_depths,
    cross_lingual_pairs,
    cross_modal_pairs,
    load_depth_sets,
    select_recordings,
)
from actstore.analyses.results import current_rows, load_results, save_results
from actstore.analyses.similarity.batched import PairRequest, random_baseline, score_pairs
from actstore.analyses.similarity.intervals import split_intervals
from actstore.analyses.similarity.registry import get_measure
from actstore.analyses.similarity.forced import all_forced

RESULT_TABLE = SIMILARITY_TABLE
#: what identifies a similarity row: the cell plus every option that changes its number
#: (`n_limit` is the requested n, 0 for "all shared ids"; `n` is the count actually used)
KEY = ("model", "measure", "kind", "depth", "point", "point_b", "lang_a", "lang_b", "modality_a",
       "modality_b", "n_limit", "keep", "seed", "recording", "pairing", "knn_k", "corpus")
#: one chart cell: a report shows its latest computation
CELL = ("model", "measure", "kind", "depth", "lang_a", "lang_b", "modality_a", "modality_b")
Kind = Literal["cross-modal", "cross-lingual", "all"]


@dataclass(frozen=True)
class GridOptions:
    """How scores are computed; recorded beside every result row."""

    measure: str = "svcca"
    keep: float = 0.9
    n: int | None = None
    seed: int = 0
    null: bool = True
    bootstrap: int = 0
    recording: Literal["random", "mean"] = "random"
    pairing: Literal["pairwise", "global"] = "pairwise"  # cross-lingual ids; the stored `pairing`
    knn_k: int = 10
    backend: str = "numpy"
    device: str | None = None
    workers: int | None = None  # processes for large numpy grids (None: one per core)
    corpus: str | None = None  # the corpus to align in (None: the model's largest; see aligned)


def similarity_grid(store: Store, model: str, kind: Kind, *, kinds: Sequence[str] | None = None,
                    depths: Sequence[str] | None = None, langs: Sequence[str] | None = None,
                    options: GridOptions = GridOptions(),
                    progress: Callable[[int], object] | None = None,
                    on_total: Callable[[int], object] | None = None) -> pl.DataFrame:
    """Compute a cross-modal, cross-lingual or both ("all") grid; returns rows (not yet saved).

    "all" computes the study's whole grid in one pass per depth: each depth's vectors are read
    and their Gram matrices formed once for the cross-modal and every cross-lingual kind.
    """
    check_grid_n(options)
    kinds_used = _kinds_to_compute(kind, kinds, stored_modalities(store, model), model)
    need = tuple(sorted({m for k in kinds_used
                         for m in (("speech", "text") if k == CROSS_MODAL else CROSS_LINGUAL_KINDS[k])}))
    levels = language_levels(store, model, langs)
    lang_list = list(levels)
    chosen_depths = choose_depths(store, model, depths, need=need)
    selection = select_recordings(store, model, {m: chosen_depths[0].points[m] for m in need},
                                  lang_list, recording=options.recording, seed=options.seed,
                                  corpus=options.corpus)
    specs: list[PairSpec] = []
    for k in kinds_used:
        if k == CROSS_MODAL:
            specs += cross_modal_pairs(selection, lang_list, options.n)
        elif kind == "all" and len(lang_list) < 2:
            continue  # one language: nothing cross-lingual to compare
        else:
            specs += cross_lingual_pairs(selection, lang_list, k, n=options.n, pairing=options.pairing)
    if on_total is not None:
        on_total(len(specs) * len(chosen_depths))
    stamp = {"model": model, "random_init": store.is_random_init(model), "corpus": selection.corpus,
             "store_version": store.activation_version(model), "computed_at": datetime.now(timezone.utc)}
    frames = [_depth_rows(depth, sets, specs, scored, options, levels, stamp)
              for depth, sets, _, scored in _scored_depths(store, model, chosen_depths, selection, need,
                                                           specs, options, progress)]
    out = pl.concat(frames)
    return out.with_columns(pl.col("score").fill_nan(None), pl.col("baseline").fill_nan(None),
                            pl.col("null").fill_nan(None), pl.col("ci_low").fill_nan(None),
                            pl.col("ci_high").fill_nan(None))


def _kinds_to_compute(kind: str, kinds: Sequence[str] | None, stored: set[str], model: str) -> list[str]:
    """The kinds a grid request computes, refusing unknown kinds and kinds the model lacks."""
    if kind not in (CROSS_MODAL, "cross-lingual", "all"):
        raise AnalysisInputError(f"Unknown grid kind {kind!r}; use cross-modal, cross-lingual or all.")
    both = stored == {"speech", "text"}
    if kind == CROSS_MODAL and not both:
        raise AnalysisInputError(
            f"Cross-modal similarity needs speech and text; model {model!r} has only "
            f"{', '.join(sorted(stored))}: ingest the other modality or use --kind cross-lingual."
        )
    kinds_used: list[str] = [CROSS_MODAL] if kind == CROSS_MODAL or (kind == "all" and both) else []
    if kind == CROSS_MODAL:
        return kinds_used
    if not kinds:
        return kinds_used + [k for k, mods in CROSS_LINGUAL_KINDS.items() if set(mods) <= stored]
    unknown = [k for k in kinds if k not in CROSS_LINGUAL_KINDS]
    if unknown:
        raise AnalysisInputError(f"Unknown kind {unknown[0]!r}; use {', '.join(CROSS_LINGUAL_KINDS)}.")
    for k in kinds:
        lacking = set(CROSS_LINGUAL_KINDS[k]) - stored
        if lacking:
            raise AnalysisInputError(
                f"{k} needs {' and '.join(sorted(lacking))} activations, which model {model!r} does not have."
            )
    return kinds_used + list(kinds)


def _depth_rows(depth, sets, specs: list[PairSpec], scored, options: GridOptions,
                levels: dict[str, str | None], stamp: dict) -> pl.DataFrame:
    """The result rows of one depth: every pair's score and what it was computed with."""
    scored, ci_low, ci_high = scored
    shapes = [(s.ids.size, sets.vectors[s.x].shape[1], sets.vectors[s.y].shape[1]) for s in specs]
    baselines = {shape: random_baseline(*shape, measure=options.measure, keep=options.keep, seed=options.seed)
                 for shape in dict.fromkeys(shapes)}
    count = len(specs)
    return pl.DataFrame({
        "model": stamp["model"],
        "random_init": stamp["random_init"],
        "measure": options.measure,
        "kind": [s.kind for s in specs],
        "depth": depth.name,
        "layer": pl.Series([depth.layer] * count, dtype=pl.Int32),
        "point_order": depth.order,
        "point": [depth.points[s.x[1]] for s in specs],
        "point_b": [depth.points[s.y[1]] for s in specs],
        "lang_a": [s.x[0] for s in specs],
        "lang_b": [s.y[0] for s in specs],
        "modality_a": [s.x[1] for s in specs],
        "modality_b": [s.y[1] for s in specs],
        "resource_level_a": [levels[s.x[0]] for s in specs],
        "resource_level_b": [levels[s.y[0]] for s in specs],
        "n": scored["n"].astype(np.int32),
        "kx": scored["kx"].astype(np.int32),
        "ky": scored["ky"].astype(np.int32),
        "forced": scored["forced"].astype(np.int32),
        "degenerate": (options.measure == "pwcca") & np.isnan(scored["score"]),
        "score": scored["score"].astype(np.float64),
        "baseline": [baselines[shape] for shape in shapes],
        "null": scored["null"].astype(np.float64) if options.null else np.full(count, np.nan),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "n_limit": pl.Series([options.n or 0] * count, dtype=pl.Int32),
        "keep": options.keep,
        "seed": options.seed,
        "knn_k": pl.Series([options.knn_k] * count, dtype=pl.Int32),
        "recording": options.recording,
        "corpus": stamp["corpus"],
        "pairing": [(CROSS_MODAL if sp.kind == CROSS_MODAL else options.pairing) for sp in specs],
        "store_version": stamp["store_version"],
        "computed_at": stamp["computed_at"],
    })


def forced_warning(frame: pl.DataFrame) -> str | None:
    """One sentence when some scores rest on forced correlations (None when none do).

    Forced correlations are 1 whatever the data (kx + ky > the span of the centred rows, n - 1
    unless rows repeat), so they inflate SVCCA and make PWCCA undefined; when every correlation
    is forced the score is 1.0 for any input. Reads the stored `forced` column.
    """
    if "forced" not in frame.columns or frame.height == 0:
        return None
    hit = frame.filter(pl.col("forced") > 0)
    if hit.height == 0:
        return None
    every = int(np.sum(all_forced(hit["forced"].to_numpy(), hit["kx"].to_numpy(), hit["ky"].to_numpy())))
    measure = frame["measure"][0]
    share = hit["forced"].to_numpy() / np.minimum(hit["kx"].to_numpy(), hit["ky"].to_numpy())
    worst = hit.row(int(np.argmax(share)), named=True)
    what = (f"{every} of them have EVERY correlation forced, so their score is 1.0 whatever the data"
            if every else f"e.g. {worst['forced']} of min({worst['kx']}, {worst['ky']}) at n = {worst['n']}")
    undefined = int(frame["degenerate"].sum()) if "degenerate" in frame.columns else 0
    extra = f", and {undefined} PWCCA scores are undefined (stored as null)" if undefined else ""
    return (f"warning: {hit.height} of {frame.height} {measure} scores include canonical correlations "
            f"that are 1 by construction (kx + ky > the centred rows' span, n - 1 unless rows repeat; "
            f"{what}){extra}: compare more sentences "
            "(--n), keep less variance (--keep), and read scores beside the 'forced' column.")


def check_grid_n(options: GridOptions) -> None:
    """Refuse an --n that cannot give a score, naming the true reason (before any vector is read)."""
    n = options.n
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise AnalysisInputError(f"--n {n} is not a positive number of sentences; pass e.g. --n 100, or "
                                 "omit it to use the smallest language or pair.")
    need = get_measure(options.measure, keep=options.keep, k=options.knn_k).min_rows()
    if n < need:
        why = (f"{n} centred sentence(s) span at most {n - 1} direction(s), so every canonical "
               "correlation would be 1 or undefined whatever the data (SVCCA needs n well above the kept "
               "directions)") if options.measure in ("svcca", "pwcca") else (
               f"{options.measure} compares at least {need} paired sentences")
        raise AnalysisInputError(f"--n {n} is too few: {why}; pass --n {need} or more (the study "
                                 "uses 194-251).")


def _score_depth(vectors: dict, requests: list, options: GridOptions, n_jobs: int | None = None,
                 progress: Callable[[int], object] | None = None):
    """Scores, nulls and (optional) bootstrap intervals of one depth's requests.

    Module-level so a worker process can run it (see `_scored_depths`).
    """
    # a single-threaded worker keeps BLAS single-threaded too: two workers already fill two cores
    with threadpool_limits(limits=1 if n_jobs == 1 else None, user_api="blas"):
        scored = score_pairs(vectors, requests, measure=options.measure, keep=options.keep,
                             null=options.null, seed=options.seed, k=options.knn_k,
                             backend=options.backend, device=options.device, n_jobs=n_jobs,
                             progress=progress)
    ci_low = np.full(len(requests), np.nan)
    ci_high = np.full(len(requests), np.nan)
    if options.bootstrap:  # half-sample intervals for E[score at n]: similarity/intervals.py
        ci_low, ci_high = split_intervals(vectors, requests, scored["score"], measure=options.measure,
                                          keep=options.keep, k=options.knn_k, rounds=options.bootstrap,
                                          seed=options.seed, backend=options.backend,
                                          device=options.device, n_jobs=n_jobs)
    return scored, ci_low, ci_high


#: below this many scores a grid runs in-process (spawning workers costs ~2 s)
_PROCESS_THRESHOLD = 4000


def _scored_depths(store, model, depths, selection, need, specs, options: GridOptions, progress):
    """Yield (depth, sets, requests, scores) for every depth, in depth order.

    Large numpy grids score depths in worker processes, one depth per process, each single
    threaded: the per-pair reductions are small LAPACK calls wrapped in Python, and in one
    process the GIL held by that Python caps two threads at ~1.6x, while two processes use both
    cores fully. Reading and aligning the next depths overlaps with the scoring. Results are
    identical either way (the null's permutations are seeded per request).
    """
    def prepared(depth):
        sets = load_depth_sets(store, model, depth, selection, need)
        requests = [PairRequest(s.x, sets.rows_for(s.x, s.ids), s.y, sets.rows_for(s.y, s.ids)) for s in specs]
        return depth, sets, requests

    workers = options.workers if options.workers is not None else (os.cpu_count() or 1)
    use_processes = (options.backend == "numpy" and workers > 1 and len(depths) > 1
                     and (options.workers is not None or len(specs) * len(depths) >= _PROCESS_THRESHOLD))
    if not use_processes:
        for depth in depths:
            depth, sets, requests = prepared(depth)
            yield depth, sets, requests, _score_depth(sets.vectors, requests, options, progress=progress)
        return
    context = multiprocessing.get_context("spawn")  # Lance is not fork-safe
    with ProcessPoolExecutor(max_workers=min(workers, len(depths)), mp_context=context) as pool:
        pending = []
        todo = list(depths)
        while todo or pending:
            while todo and len(pending) < workers + 1:
                depth, sets, requests = prepared(todo.pop(0))
                pending.append((depth, sets, requests,
                                pool.submit(_score_depth, sets.vectors, requests, options, 1)))
            depth, sets, requests, future = pending.pop(0)
            result = future.result()
            if progress is not None:
                progress(len(requests))
            yield depth, sets, requests, result


def save_grid(store: Store, frame: pl.DataFrame) -> None:
    """Write grid rows to the `similarity` table, replacing the stored rows with the same KEY."""
    save_results(store, RESULT_TABLE, frame, key=KEY)


def load_grid(store: Store, model: str, *, measure: str | None = None,
              current: bool = True) -> pl.DataFrame | None:
    """Stored grid rows of `model`; `current` keeps each cell's latest row (what a report shows).

    Rows comparing `model` with another model (kind "cross-model", `analyses.cross_model`) are
    not part of a model's own grid and are left out.
    """
    frame = load_results(store, RESULT_TABLE, model)
    if frame is not None and "model_b" in frame.columns:
        frame = frame.filter(pl.col("kind") != "cross-model")
    if frame is not None and measure is not None:
        frame = frame.filter(pl.col("measure") == measure)
    return current_rows(frame, CELL) if current else frame
