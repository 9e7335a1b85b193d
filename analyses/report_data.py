"""The result rows a report shows, chosen from what the analyses stored.

Result tables keep every computation (other option sets, other language subsets), keyed so that
nothing is silently replaced. A report shows, per chart cell, the latest computation and, for
set-level results (t-SNE maps, neuron rankings), the one over the most languages: that choice is
the analyses' knowledge of their own keys, so it lives here and the CLI hands the frames to
`actstore.reports` to draw.
"""

from __future__ import annotations

import polars as pl

from actstore.store import Store
from actstore.analyses.grids import load_grid
from actstore.analyses.neuron_maps import load_neurons
from actstore.analyses.retrieval_grid import load_retrieval
from actstore.analyses.study_frames import neuron_study_frames
from actstore.analyses.tsne_maps import load_tsne


def report_frames(store: Store, model: str, *, measure: str = "svcca") -> dict[str, pl.DataFrame | None]:
    """Section name -> the rows to draw (None where nothing is stored)."""
    store.require_model(model)
    neurons = load_neurons(store, model)
    return {
        "similarity": load_grid(store, model, measure=measure),
        "retrieval": load_retrieval(store, model),
        "tsne": load_tsne(store, model),
        "neurons_top": neurons["neurons_top"],
        "neurons_overlap": neurons["neurons_overlap"],
        "concentration": neurons["concentration"],
        **neuron_study_frames(store, model),  # the neuron study over sites (issue 16)
    }


def multi_model_frames(store: Store, models: list[str], frames: dict[str, dict], *,
                       measure: str = "svcca") -> tuple[list[str], dict[str, pl.DataFrame], dict]:
    """What a report over several models draws: (models in page order, comparison, findings).

    Real (trained) models come first and open the page with their findings; the study's
    side-by-side comparison is then a pipeline check over the random-init models (where there are
    two or more of them beside real ones; otherwise over all models). `frames` are each model's
    `report_frames`.
    """
    from actstore.analyses.comparison import comparison_frames
    from actstore.analyses.findings import findings_frames, real_first

    ordered = real_first(store, models)
    grids = {m: f["similarity"] for m, f in frames.items()}
    findings = findings_frames(store, ordered, measure=measure, grids=grids)
    random_init = [m for m in ordered if store.is_random_init(m)]
    compared = random_init if findings["provenance"] is not None and len(random_init) >= 2 else ordered
    return ordered, comparison_frames(store, compared, measure=measure, grids=grids), findings
