"""Fill in the results a report draws from, with the defaults of the `actstore analyze` commands.

`actstore report` calls `ensure_results` explicitly before it renders (unless `--no-compute`), so
the report package itself only reads result frames and draws them: computing and writing
results stays in analyses. What exists is never recomputed; only what is missing is filled.

The neuron study (`ensure_neuron_study`): where a model stores neuron sites, their selectivity
and concentration tables; where it stores decoder states (`decoder.L{i}`), the language probe on
them. Interventions need the model's weights, so a report only draws those `intervene` stored.
"""

from __future__ import annotations

import logging
from typing import Sequence

import polars as pl

from actstore.store import Store
from actstore.analyses.aligned import model_depths, stored_modalities
from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL
from actstore.analyses.grids import GridOptions, load_grid
from actstore.analyses.neuron_sites import load_site_tables, save_site_tables, site_neuron_tables
from actstore.analyses.probe import language_probe, load_probe, save_probe
from actstore.analyses.site_data import is_site, model_sites
from actstore.errors import AnalysisInputError
from actstore.schema import NEURON_SITES_TOP_TABLE, SITE_CONCENTRATION_TABLE
from actstore.analyses.neuron_maps import load_neurons
from actstore.analyses.results import missing_languages
from actstore.analyses.retrieval_grid import load_retrieval
from actstore.analyses.tasks import run_neurons, run_retrieval, run_similarity, run_tsne
from actstore.analyses.tsne_maps import load_tsne

log = logging.getLogger(__name__)


def state_depths(store: Store, model: str) -> list[str] | None:
    """The depths of hidden states when the model also stores neuron sites (None: no site, every
    depth). Similarity, retrieval, t-SNE and the per-depth neuron tables a report fills in run on
    these: sites are the neuron study's (hundreds of them, thousands of neurons wide), and two
    stacks' sites of one name are different neurons."""
    depths = model_depths(store, model)
    if not any(is_site(p) for d in depths for p in d.points.values()):
        return None
    return [d.name for d in depths if not all(is_site(p) for p in d.points.values())]


def _state_modalities(store: Store, model: str, states: list[str]) -> set[str]:
    return {m for d in model_depths(store, model) if d.name in states for m in d.points}


def _having(store: Store, model: str, states: list[str] | None, need: Sequence[str]) -> list[str] | None:
    """The hidden-state depths holding every modality in `need` (None: no site stored, every depth)."""
    if states is None:
        return None
    return [d.name for d in model_depths(store, model) if d.name in states and all(m in d.points for m in need)]


def _ends(store: Store, model: str, need: Sequence[str]) -> list[str]:
    """First and last depth having every modality in `need` (a small default for t-SNE)."""
    states = state_depths(store, model)
    depths = [d for d in model_depths(store, model) if all(m in d.points for m in need)
              and (states is None or d.name in states)]
    if not depths:
        return []
    return sorted({depths[0].name, depths[-1].name}, key=[d.name for d in depths].index)


def languages_by_modality(store: Store, model: str) -> dict[str, set[str]]:
    """The languages stored per modality for `model` (a grid's completeness is judged on them)."""
    pairs = (store.scan_activations(model, with_vectors=False).select("modality", "lang").unique()
             .collect().iter_rows())
    out: dict[str, set[str]] = {}
    for modality, lang in pairs:
        out.setdefault(modality, set()).add(lang)
    return out


def complete_kinds(store: Store, model: str, measure: str,
                   by_modality: dict[str, set[str]] | None = None) -> set[str]:
    """The similarity kinds whose stored `measure` grid covers every language they can have.

    A kind counts as done only then: a rerun on a subset (--langs eng,fra) must not make the report
    pass the subset off as the whole grid, and a language stored as text only (no espeak-ng voice)
    must not make every report recompute the speech grids that can never include it."""
    grid = load_grid(store, model, measure=measure)
    if grid is None:
        return set()
    by_modality = languages_by_modality(store, model) if by_modality is None else by_modality
    return {k for k in grid["kind"].unique().to_list()
            if not missing_languages(grid.filter(pl.col("kind") == k), kind_languages(k, by_modality))}


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
    states = state_depths(store, model)
    if states == []:  # sites only: nothing of the FLEURS-style sections to fill
        return ensure_neuron_study(store, model, seed=seed)
    done: list[str] = []
    mods = stored_modalities(store, model) if states is None else _state_modalities(store, model, states)
    by_modality = languages_by_modality(store, model)
    n_langs = len(set().union(*by_modality.values())) if by_modality else 0
    kinds_done = complete_kinds(store, model, measure, by_modality)
    options = GridOptions(measure=measure, seed=seed)
    if bootstrap:  # asked for intervals: (re)compute them, never draw older ones of another method
        kinds_done.discard("cross-modal")
    if mods == {"speech", "text"} and "cross-modal" not in kinds_done:
        log.info("computing cross-modal %s", measure)
        run_similarity(store, model, "cross-modal", depths=_having(store, model, states, ("speech", "text")),
                       options=GridOptions(measure=measure, seed=seed, bootstrap=bootstrap))
        done.append(f"cross-modal {measure}")
    cl_kinds = [k for k, m in CROSS_LINGUAL_KINDS.items() if set(m) <= mods and k not in kinds_done]
    if n_langs >= 2 and cl_kinds:
        log.info("computing cross-lingual %s", measure)
        run_similarity(store, model, "cross-lingual", kinds=cl_kinds, options=options,
                       depths=_having(store, model, states, [m for k in cl_kinds for m in CROSS_LINGUAL_KINDS[k]]))
        done.append(f"cross-lingual {measure}")
    if load_retrieval(store, model) is None and (n_langs >= 2 or mods == {"speech", "text"}):
        log.info("computing retrieval")
        # one language: only speech-text retrieval exists (speech-speech/text-text need a pair)
        ret_kinds = [k for k, m in CROSS_LINGUAL_KINDS.items() if set(m) <= mods] if n_langs >= 2 else ["speech-text"]
        run_retrieval(store, model, kinds=ret_kinds, seed=seed,
                      depths=_having(store, model, states, sorted(mods)))
        done.append("retrieval")
    if load_tsne(store, model) is None:
        log.info("computing t-SNE")
        run_tsne(store, model, depths=_ends(store, model, sorted(mods)) or None,
                 per_language=tsne_per_language, seed=seed)
        done.append("tsne")
    if n_langs >= 2 and load_neurons(store, model)["neurons_top"] is None:  # one run writes all (overlap: only with both modalities)
        log.info("computing neuron tables")
        run_neurons(store, model, depths=states, seed=seed)
        done.append("neurons")
    return done + ensure_neuron_study(store, model, seed=seed)


def _probe_folds(store: Store, model: str, points: list[str]) -> int:
    """Folds for the default probe: 5, or fewer where a language has fewer rows in a modality."""
    counts = (store.scan_activations(model, with_vectors=False).filter(pl.col("point").is_in(points))
              .group_by("point", "modality", "lang").len().collect())
    return min(5, int(counts["len"].min())) if counts.height else 0


def ensure_neuron_study(store: Store, model: str, *, seed: int = 0) -> list[str]:
    """Compute and save the neuron-study tables a report of `model` draws that are not stored yet.

    Site tables: when the model stores sites and neither top-k nor concentration rows exist.
    Probe: over the decoder states (`decoder.L*`), when none is stored, with 5 folds (fewer when
    a language has fewer rows). A model whose rows cannot be compared (one language and one
    modality) is skipped with a log line: its report shows no neuron-study section.
    """
    done: list[str] = []
    stored = load_site_tables(store, model)
    if model_sites(store, model) and stored[NEURON_SITES_TOP_TABLE] is None \
            and stored[SITE_CONCENTRATION_TABLE] is None:
        log.info("computing neuron-site tables")
        try:
            save_site_tables(store, site_neuron_tables(store, model, seed=seed))
            done.append("neuron-site")
        except AnalysisInputError as exc:
            log.info("neuron-site tables skipped: %s", exc)
    decoder = [p for p in store.require_model(model)["point"].unique().to_list()
               if p.startswith("decoder.L") and not is_site(p)]
    if decoder and load_probe(store, model) is None and (folds := _probe_folds(store, model, decoder)) >= 2:
        log.info("computing the language probe")
        try:
            save_probe(store, language_probe(store, model, points=["decoder.L*"], folds=folds, seed=seed))
            done.append("language probe")
        except AnalysisInputError as exc:
            log.info("language probe skipped: %s", exc)
    return done
