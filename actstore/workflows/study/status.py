"""Whether a study step's output is already in the store (or on disk): what `--status` prints and
what a run skips.

Why from the store and nothing else: a study killed at any moment leaves no ledger of its own to
trust; the store's committed rows are the truth. An ingest counts as done when a run of that
model finished `complete` with the same split, limit, layers, sites and target, covering the
study's languages and modalities (a killed or different run is resumed by running the ingest, which
skips every stored item). An analysis counts as done when its result rows are stored for the model
(and for similarity: that measure and kind over every language it can cover). Delete the rows to
have a step recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from actstore.store import Store
from actstore.workflows.study.plan import Step


def ingest_done(store: Store, step: Step) -> bool:
    a = step.args
    runs = store.runs(step.system)
    if not runs.height:
        return False
    wanted_layers = a["layers"] if isinstance(a["layers"], str) or a["layers"] is None else list(a["layers"])
    for row in runs.filter(pl.col("status") == "complete").iter_rows(named=True):
        params = json.loads(row["params"] or "{}")
        same = (row["split"] == a["split"] and params.get("limit") == a["limit"]
                and params.get("layers") == wanted_layers
                and (params.get("sites") or None) == (list(a["sites"]) if a["sites"] else None)
                and params.get("target_lang") == a["target_lang"]
                and set(a["langs"]) <= set(row["langs"] or ()) and set(a["modalities"]) <= set(row["modalities"] or ()))
        if same:
            return True
    return False


def stored_items(store: Store | None, step: Step) -> int:
    """Items (sample ids per language and modality) of an ingest step's model already stored at
    some point, within the step's languages and modalities: how far a partial ingest got."""
    if store is None or step.system not in store.models():
        return 0
    a = step.args
    keys = (store.scan_activations(step.system, with_vectors=False)
            .filter(pl.col("lang").is_in(list(a["langs"])) & pl.col("modality").is_in(list(a["modalities"])))
            .select("lang", "modality", "sample_id").unique().collect())
    return keys.height


def _similarity_done(store: Store, step: Step) -> bool:
    from actstore.analyses.complete import complete_kinds, languages_by_modality
    from actstore.kinds import CROSS_LINGUAL_KINDS, CROSS_MODAL

    a = step.args
    by_modality = languages_by_modality(store, a["model"])
    mods = set(by_modality)
    cross_lingual = [k for k, m in CROSS_LINGUAL_KINDS.items() if set(m) <= mods]
    kinds = {"cross-modal": [CROSS_MODAL], "cross-lingual": cross_lingual,
             "all": ([CROSS_MODAL] if mods == {"speech", "text"} else []) + cross_lingual}.get(a["kind"], [a["kind"]])
    return set(kinds) <= complete_kinds(store, a["model"], a["measure"], by_modality)


def _neurons_done(store: Store, step: Step) -> bool:
    from actstore.analyses.neuron_maps import load_neurons
    from actstore.analyses.neuron_sites import load_site_tables

    a = step.args
    hidden = a.get("points") or not a.get("sites")
    # the run writes every table the model's rows allow (a text-only model has no speech-vs-text
    # table), so one stored table means it ran
    ok = not hidden or any(v is not None for v in load_neurons(store, a["model"]).values())
    if a.get("sites"):
        ok = ok and any(v is not None for v in load_site_tables(store, a["model"]).values())
    return ok


def _intervention_done(store: Store, step: Step) -> bool:
    from actstore.analyses.results import load_results
    from actstore.schema import INTERVENTIONS_TABLE

    frame = load_results(store, INTERVENTIONS_TABLE, step.args["model"])
    return frame is not None and frame.filter(pl.col("site") == step.args["site"]).height > 0


def _loaded(load):
    return lambda store, step: load(store, step.args["model"]) is not None


def _cross_model_done(store: Store, step: Step) -> bool:
    from actstore.analyses.cross_model import load_cross_model

    return load_cross_model(store, step.args["a"], step.args["b"]) is not None


def step_done(store: Store | None, step: Step) -> bool | None:
    """True when the step's output is stored; False when not; None for steps that always run
    (a conversion is cached by itself, the report is rewritten from the stored results)."""
    from actstore.analyses.probe import load_probe
    from actstore.analyses.retrieval_grid import load_retrieval
    from actstore.analyses.tsne_maps import load_tsne

    if step.kind == "build":
        out = Path(step.args["out"])
        return out.is_dir() and any(out.iterdir())
    if step.kind in ("convert", "report"):
        return None
    if store is None:
        return False
    if step.kind != "ingest" and step.system and step.system not in store.models():
        return False
    checks = {"ingest": ingest_done, "similarity": _similarity_done, "neurons": _neurons_done,
              "intervention": _intervention_done, "cross-model": _cross_model_done,
              "retrieval": _loaded(load_retrieval), "tsne": _loaded(load_tsne), "probe": _loaded(load_probe)}
    return bool(checks[step.kind](store, step))
