"""Retrieval grids over a stored model: nearest neighbours by cosine between aligned sides.

Per depth and language pair (the same id pairing as the similarity grids): speech->text of one
language (the diagonal of speech-text) and of two languages, and lang A -> lang B within speech
and within text; both directions, P@1, recall@5/10 and LASER-style xsim error (ratio margin,
k=4). Saved to the `retrieval` table; with `retrieval_grid_with_items`, also one row per query
(`retrieval_items`: which sentence it retrieved first and the rank of the true one), so hubness
(sentences retrieved by many queries) and failures can be studied in SQL.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import polars as pl

from actstore.errors import AnalysisInputError
from actstore.schema import RETRIEVAL_ITEMS_TABLE, RETRIEVAL_TABLE
from actstore.store import Store
from actstore.kinds import CROSS_LINGUAL_KINDS
from actstore.analyses.aligned import language_levels, stored_modalities, choose_depths, cross_lingual_pairs, load_depth_sets, select_recordings
from actstore.analyses.results import current_rows, load_results, save_results, stamp
from actstore.analyses.retrieval import retrieval_scores

RESULT_TABLE = RETRIEVAL_TABLE
#: what identifies a retrieval row (`n_limit`: the requested n, 0 for all shared ids)
KEY = ("model", "kind", "depth", "point", "point_b", "lang_a", "lang_b", "direction", "n_limit",
       "seed", "margin_k", "corpus")
#: one chart cell: a report shows its latest computation
CELL = ("model", "kind", "depth", "lang_a", "lang_b", "direction")
ITEMS_TABLE = RETRIEVAL_ITEMS_TABLE
#: one query of one retrieval run: which sentence it retrieved first and the true one's rank
ITEMS_KEY = ("model", "kind", "depth", "lang_a", "lang_b", "direction", "query_id", "n_limit", "seed",
             "margin_k", "corpus")


def retrieval_grid(store: Store, model: str, **options) -> pl.DataFrame:
    """Retrieval scores for every pair of every kind at every chosen depth (not yet saved)."""
    return retrieval_grid_with_items(store, model, **options)[0]


def retrieval_grid_with_items(store: Store, model: str, *, kinds: Sequence[str] | None = None,
                   depths: Sequence[str] | None = None, langs: Sequence[str] | None = None,
                   n: int | None = None, seed: int = 0, margin_k: int = 4, backend: str = "numpy",
                   device: str | None = None, progress: Callable[[int], object] | None = None,
                   on_total: Callable[[int], object] | None = None, corpus: str | None = None
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(scores, per-query items) for every pair of every kind at every chosen depth (not yet saved).

    corpus: the corpus whose sentence ids are aligned (None: the model's largest).
    """
    have = stored_modalities(store, model)
    kinds = list(kinds) if kinds else [k for k, m in CROSS_LINGUAL_KINDS.items() if set(m) <= have]
    for k in kinds:
        if k not in CROSS_LINGUAL_KINDS:
            raise AnalysisInputError(f"Unknown kind {k!r}; use {', '.join(CROSS_LINGUAL_KINDS)}.")
        if not set(CROSS_LINGUAL_KINDS[k]) <= have:
            raise AnalysisInputError(f"{k} retrieval needs both sides stored; model {model!r} has {', '.join(sorted(have))}.")
    need = tuple(sorted({m for k in kinds for m in CROSS_LINGUAL_KINDS[k]}))
    levels = language_levels(store, model, langs)
    lang_list = list(levels)
    chosen = choose_depths(store, model, depths, need=need)
    selection = select_recordings(store, model, {m: chosen[0].points[m] for m in need}, lang_list, seed=seed,
                                  corpus=corpus)
    specs = [s for k in kinds for s in _pairs(selection, lang_list, k, n)]
    if on_total is not None:
        on_total(len(specs) * len(chosen))
    rows, items = [], []
    for depth in chosen:
        sets = load_depth_sets(store, model, depth, selection, need)
        for spec in specs:
            a = sets.vectors[spec.x][sets.rows_for(spec.x, spec.ids)]
            b = sets.vectors[spec.y][sets.rows_for(spec.y, spec.ids)]
            # recall@k with k >= n rows is 1 by definition (every rank is < n): not an input error
            ks = tuple(k for k in (1, 5, 10) if k <= a.shape[0])
            # the margin's neighbourhood cannot exceed the candidates: a language pair with fewer
            # sentences than margin_k uses all of them (each row stores the margin_k it used)
            used_k = min(margin_k, a.shape[0])
            result = retrieval_scores(a, b, ks=ks, margin_k=used_k, backend=backend, device=device)
            for r in result.to_rows():
                rows.append({
                    "depth": depth.name, "point_order": depth.order, "layer": depth.layer,
                    "point": depth.points[spec.x[1]], "point_b": depth.points[spec.y[1]],
                    "kind": spec.kind, "lang_a": spec.x[0], "lang_b": spec.y[0],
                    "direction": r["direction"], "n": r["n"], "p_at_1": r["p_at_1"],
                    "recall_at_5": r.get("recall@5", 1.0), "recall_at_10": r.get("recall@10", 1.0),
                    "xsim_error": r["xsim_error"], "margin_k": r["margin_k"],
                    "n_limit": n or 0, "seed": seed, "corpus": selection.corpus,
                })
            items.append(_item_rows(result, spec, depth.name, n or 0, seed, used_k, selection.corpus))
            if progress is not None:
                progress(1)
    frame = pl.DataFrame(rows, schema_overrides={"layer": pl.Int32, "n_limit": pl.Int32})
    return stamp(frame, store, model), stamp(pl.concat(items), store, model)


def _item_rows(result, spec, depth: str, n_limit: int, seed: int, margin_k: int, corpus) -> pl.DataFrame:
    """One row per query of both directions: the sentence it retrieved first, the true one's rank."""
    ids = np.asarray(spec.ids)
    frames = []
    for direction, scores, (q_lang, t_lang) in (("a->b", result.a_to_b, (spec.x[0], spec.y[0])),
                                               ("b->a", result.b_to_a, (spec.y[0], spec.x[0]))):
        frames.append(pl.DataFrame({
            "kind": spec.kind, "depth": depth, "lang_a": spec.x[0], "lang_b": spec.y[0], "direction": direction,
            "query_lang": q_lang, "target_lang": t_lang,
            "query_id": pl.Series(ids, dtype=pl.Int64), "retrieved_id": pl.Series(ids[scores.top1], dtype=pl.Int64),
            "rank": pl.Series(scores.ranks, dtype=pl.Int32),
            "n_limit": pl.Series([n_limit] * ids.size, dtype=pl.Int32), "seed": seed,
            "margin_k": margin_k, "corpus": pl.Series([corpus] * ids.size, dtype=pl.String),
        }))
    return pl.concat(frames)


def _pairs(selection, langs, kind, n):
    """Like the similarity pairs; speech-text always includes each language with itself."""
    if len(langs) < 2:
        if kind != "speech-text":
            raise AnalysisInputError(f"{kind} retrieval needs at least 2 languages; pass more --langs.")
        from actstore.analyses.aligned import PairSpec

        lang = langs[0]
        ids = np.intersect1d(selection.ids(lang, "speech"), selection.ids(lang, "text"))
        return [PairSpec(kind, (lang, "speech"), (lang, "text"), ids[:n] if n else ids)]
    return cross_lingual_pairs(selection, langs, kind, n=n)


def save_retrieval(store: Store, frame: pl.DataFrame, items: pl.DataFrame | None = None) -> None:
    """Write retrieval rows (and per-query items), replacing the stored rows with the same key."""
    save_results(store, RESULT_TABLE, frame, key=KEY)
    if items is not None and items.height:
        save_results(store, ITEMS_TABLE, items, key=ITEMS_KEY)


def load_retrieval(store: Store, model: str, *, current: bool = True) -> pl.DataFrame | None:
    """Stored retrieval rows of `model`; `current` keeps each cell's latest row."""
    frame = load_results(store, RESULT_TABLE, model)
    return current_rows(frame, CELL) if current else frame
