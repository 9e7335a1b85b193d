"""Fill in the results a report draws from, with the defaults of the `actstore analyze` commands.

`actstore report` calls `ensure_results` explicitly before it renders (unless `--no-compute`), so
the report package itself only reads result frames and draws them: computing and writing
results stays in analyses. What exists is never recomputed; only what is missing is filled.
"""

from __future__ import annotations

import logging
from typing import Sequence

import polars as pl

from actstore.store import Store
from actstore.analyses.aligned import model_depths, stored_modalities
from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL
from actstore.analyses.grids import GridOptions, load_grid
from actstore.analyses.neuron_maps import load_neurons
from actstore.analyses.results import missing_languages
from actstore.analyses.retrieval_grid import load_retrieval
from actstore.analyses.tasks import run_neurons, run_retrieval, run_similarity, run_tsne
from actstore.analyses.tsne_maps import load_tsne

log = logging.getLogger(__name__)


def _ends(store: Store, model: str, need: Sequence[str]) -> list[str]:
    """First and last depth having every modality in `need` (a small default for t-SNE)."""
    depths = [d for d in model_depths(store, model) if all(m in d.points for m in need)]
    if not depths:
        return []
    return sorted({depths[0].name, depths[-1].name}, key=[d.name for d in depths].index)


def _languages_by_modality(store: Store, model: str) -> dict[str, set[str]]:
    pairs = (store.scan_activations(model, with_vectors=False).select("modality", "lang").unique()
             .collect().iter_rows())
    out: dict[str, set[str]] = {}
    for modality, lang in pairs:
        out.setdefault(modality, set()).add(lang)
    return out


def kind_languages(kind: str, by_modality: dict[str, set[str]]) -> list[str]:
    """The languages a complete grid of `kind` covers: both modalities' for cross-modal (the same
    sentence as speech and text), either side's for a cross-lingual kind."""
    if kind == CROSS_MODAL:
        return sorted(by_modality.get("speech", set()) & by_modality.get("text", set()))
    sides = CROSS_LINGUAL_KINDS.get(kind, tuple(by_modality))
    return sorted(set().union(*(by_modality.get(m, set()) for m in sides)))


def ensure_results(store: Store, model: str, *, measure: str = "svcca", tsne_per_language: int = 50,
                   seed: int = 0, bootstrap: int = 0) -> list[str]:
    """Compute and save every result a report of `model` shows that is not stored yet.

    Returns the names of the results computed (empty when everything was stored). Sections that
    cannot exist for this model (cross-modal without speech and text, cross-lingual with one
    language) are skipped, not failed. With `bootstrap` > 0 the cross-modal grid (whose
    intervals the report draws) is recomputed with `bootstrap` half-sample rounds
    (`similarity.intervals`); its scores are the same, only the intervals are added.
    """
    store.require_model(model)
    done: list[str] = []
    mods = stored_modalities(store, model)
    by_modality = _languages_by_modality(store, model)
    n_langs = len(set().union(*by_modality.values())) if by_modality else 0
    grid = load_grid(store, model, measure=measure)
    # a kind counts as done only when its rows cover every language it can have: a rerun on a
    # subset (--langs eng,fra) must not make the report pass the subset off as the whole grid, and
    # a language stored as text only (no espeak-ng voice) must not make every report recompute the
    # speech grids that can never include it
    kinds_done = set() if grid is None else {
        k for k in grid["kind"].unique().to_list()
        if not missing_languages(grid.filter(pl.col("kind") == k), kind_languages(k, by_modality))}
    options = GridOptions(measure=measure, seed=seed)
    if bootstrap:  # asked for intervals: (re)compute them, never draw older ones of another method
        kinds_done.discard("cross-modal")
    if mods == {"speech", "text"} and "cross-modal" not in kinds_done:
        log.info("computing cross-modal %s", measure)
        run_similarity(store, model, "cross-modal", options=GridOptions(measure=measure, seed=seed,
                                                                        bootstrap=bootstrap))
        done.append(f"cross-modal {measure}")
    cl_kinds = [k for k, m in CROSS_LINGUAL_KINDS.items() if set(m) <= mods and k not in kinds_done]
    if n_langs >= 2 and cl_kinds:
        log.info("computing cross-lingual %s", measure)
        run_similarity(store, model, "cross-lingual", kinds=cl_kinds, options=options)
        done.append(f"cross-lingual {measure}")
    if load_retrieval(store, model) is None and (n_langs >= 2 or mods == {"speech", "text"}):
        log.info("computing retrieval")
        # one language: only speech-text retrieval exists (speech-speech/text-text need a pair)
        run_retrieval(store, model, kinds=None if n_langs >= 2 else ["speech-text"], seed=seed)
        done.append("retrieval")
    if load_tsne(store, model) is None:
        log.info("computing t-SNE")
        run_tsne(store, model, depths=_ends(store, model, sorted(mods)) or None,
                 per_language=tsne_per_language, seed=seed)
        done.append("tsne")
    if n_langs >= 2 and any(v is None for v in load_neurons(store, model).values()):
        log.info("computing neuron tables")
        run_neurons(store, model, seed=seed)
        done.append("neurons")
    return done
