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
    }
