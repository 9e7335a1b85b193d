"""`analyze neurons` over neuron sites: selectivity, where it sits, overlap, concentration.

Runs beside the per-depth tables of `neuron_maps` (hidden-state points) whenever a model stores
sites (`site_data.SITE_RE`). Every site is read once (all its modalities and languages) and
dropped before the next, so memory is one site's rows (items x width) at a time, whatever the
number of sites.

Keys: a site's top-k and overlap rows rank a language against the other languages of the run, so
they are replaced per (model, site, langs, corpus) unit. The spread ranks neurons over all sites
of the run, so it is one unit per (model, langs, corpus, sites) where `sites` names the site
selection (`all`, or the patterns given). Concentration is per group: replaced row by row.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl

from actstore.errors import AnalysisInputError
from actstore.schema import (NEURON_SITES_OVERLAP_TABLE, NEURON_SITES_SPREAD_TABLE, NEURON_SITES_TOP_TABLE,
                             SITE_CONCENTRATION_TABLE)
from actstore.store import Store
from actstore.analyses.aligned import language_levels, stored_modalities
from actstore.analyses.results import lang_set, load_results, save_results, stamp
from actstore.analyses.site_concentration import site_concentration
from actstore.analyses.site_data import load_site, model_sites
from actstore.analyses.site_selectivity import selectivity_over_sites

_SITE_UNIT = ("model", "depth", "langs", "corpus")
KEYS = {
    NEURON_SITES_TOP_TABLE: (*_SITE_UNIT, "target_kind", "target", "within", "direction", "rank"),
    NEURON_SITES_OVERLAP_TABLE: (*_SITE_UNIT, "lang", "direction"),
    NEURON_SITES_SPREAD_TABLE: ("model", "langs", "corpus", "sites", "target_kind", "target", "within",
                                "direction", "depth"),
    SITE_CONCENTRATION_TABLE: ("model", "depth", "corpus", "lang", "modality", "script"),
}
UNITS = {NEURON_SITES_TOP_TABLE: _SITE_UNIT, NEURON_SITES_OVERLAP_TABLE: _SITE_UNIT,
         NEURON_SITES_SPREAD_TABLE: ("model", "langs", "corpus", "sites")}
TABLES = tuple(KEYS)


def site_neuron_tables(store: Store, model: str, *, sites: Sequence[str] | None = None,
                       langs: Sequence[str] | None = None, k: int = 20, global_k: int = 1000,
                       n_boot: int = 200, seed: int = 0, corpus: str | None = None,
                       strict_k: bool = False, progress=None) -> dict[str, pl.DataFrame]:
    """The four site tables of `model` (not yet saved); {} when the model stores no site.

    sites: names or globs (`decoder.*.cross_attn.*`); None: every stored site.
    k: top neurons kept per site and comparison (above a site's width: refused with strict_k, else
    every neuron).
    global_k: neurons ranked over all sites per comparison, counted per site (the heatmaps).
    n_boot, seed: resamples of the concentration intervals and their seed.
    """
    stored_modalities(store, model)  # refuses an unknown model and keys stored twice
    chosen = model_sites(store, model, sites)
    if not chosen:
        return {}
    lang_list = list(language_levels(store, model, langs))
    if len(lang_list) < 2 and not _has_two_modalities(store, model, chosen[0].name):
        raise AnalysisInputError(f"Only {lang_list} is selected; neuron selectivity needs two languages "
                                 "(or both modalities of one): pass more --langs.")
    first = load_site(store, model, chosen[0], langs=lang_list, corpus=corpus)
    corpus_used = first.meta["corpus"][0] if first.meta.height else corpus
    cache = {chosen[0].name: first}
    concentration = []

    def load(site):
        rows = cache.pop(site.name, None) or load_site(store, model, site, langs=lang_list, corpus=corpus_used)
        concentration.append(site_concentration(rows, n_boot=n_boot, seed=seed))
        return rows

    frames = selectivity_over_sites(load, chosen, k=k, global_k=global_k, strict_k=strict_k,
                                    progress=progress)
    site_set = ",".join(sites) if sites else "all"
    out = {NEURON_SITES_TOP_TABLE: frames["top"], NEURON_SITES_SPREAD_TABLE: frames["spread"],
           NEURON_SITES_OVERLAP_TABLE: frames["overlap"], SITE_CONCENTRATION_TABLE: pl.concat(concentration)}
    result = {}
    for name, frame in out.items():
        if frame.height == 0:
            continue
        frame = frame.with_columns(pl.lit(corpus_used, pl.String).alias("corpus"))
        if name in UNITS:
            frame = frame.with_columns(pl.lit(lang_set(lang_list)).alias("langs"))
        if name == NEURON_SITES_SPREAD_TABLE:
            frame = frame.with_columns(pl.lit(site_set).alias("sites"))
        result[name] = stamp(frame, store, model)
    return result


def _has_two_modalities(store: Store, model: str, site: str) -> bool:
    mods = store.read(model, points=site, columns=["modality"], vectors=False).meta["modality"]
    return mods.n_unique() >= 2


def save_site_tables(store: Store, tables: dict[str, pl.DataFrame]) -> None:
    """Write each site table by its key (top, overlap and spread: unit by unit)."""
    for name, frame in tables.items():
        save_results(store, name, frame, key=KEYS[name], unit_by=UNITS.get(name))


def load_site_tables(store: Store, model: str) -> dict[str, pl.DataFrame | None]:
    """Stored site tables of `model` (every unit; a report picks with `results.widest_units`)."""
    return {name: load_results(store, name, model) for name in TABLES}
