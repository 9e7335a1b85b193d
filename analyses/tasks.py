"""One call per `actstore analyze ...` command: compute, save, and summarise for printing.

The CLI only parses options and prints; everything between (running the grid, writing the result
table, building the summary table a user reads in the terminal) is here, so the same steps are
available from Python and tested without the CLI. Each function returns a `TaskResult`: the saved
frames by table name and a small summary frame (what the CLI prints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import polars as pl

from actstore.errors import AnalysisInputError
from actstore.store import Store
from actstore.grid_means import cross_lingual_summary, cross_modal_summary
from actstore.analyses.grids import RESULT_TABLE as SIMILARITY_TABLE, Kind, save_grid, similarity_grid
from actstore.analyses.devices import resolve_device
from actstore.analyses.probe import TABLE as PROBE_TABLE, language_probe, save_probe
from actstore.analyses.neuron_maps import neuron_tables, save_neurons
from actstore.analyses.neuron_sites import TABLES as SITE_TABLES, save_site_tables, site_neuron_tables
from actstore.analyses.retrieval_grid import (ITEMS_TABLE, RESULT_TABLE as RETRIEVAL_TABLE,
                                              retrieval_grid_with_items, save_retrieval)
from actstore.analyses.tsne_maps import RESULT_TABLE as TSNE_TABLE, save_tsne, tsne_maps

Progress = Callable[[int], object] | None


@dataclass
class TaskResult:
    """What one analysis wrote (`frames`, by result table) and the table to show a user."""

    model: str
    random_init: bool
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    summary: pl.DataFrame = field(default_factory=pl.DataFrame)


def grid_summary(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Means per depth: cross-modal per resource level, cross-lingual per kind, or both for "all".

    For "all", one table: the cross-modal rows (`kind` = cross-modal, `group` = resource level)
    followed by the cross-lingual kinds (`group` = all).
    """
    kinds = set(frame["kind"].unique().to_list()) if frame.height else set()
    if kind == "cross-modal":
        summary = cross_modal_summary(frame)
    elif kind == "cross-lingual" or "cross-modal" not in kinds:
        summary = cross_lingual_summary(frame)
    else:
        xm = cross_modal_summary(frame).with_columns(pl.lit("cross-modal").alias("kind"))
        xl = cross_lingual_summary(frame).with_columns(pl.lit("all").alias("group"))
        summary = pl.concat([xm, xl], how="diagonal_relaxed")
    return summary.drop("model")


def retrieval_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Mean P@1 and xsim error per kind, depth and direction, over language pairs."""
    return (frame.group_by("kind", "depth", "point_order", "direction")
            .agg(pl.col("p_at_1").mean(), pl.col("xsim_error").mean(), pl.len().alias("pairs"))
            .sort("kind", "point_order", "direction").drop("point_order"))


def tsne_summary(frame: pl.DataFrame) -> pl.DataFrame:
    """Per depth: points embedded and the final KL divergence (lower: a more faithful map)."""
    return (frame.group_by("depth", "point_order")
            .agg(pl.len().alias("n"), pl.col("kl_divergence").first())
            .sort("point_order").drop("point_order"))


def tables_summary(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Rows written per result table."""
    return pl.DataFrame({"table": list(frames), "rows": [f.height for f in frames.values()]},
                        schema={"table": pl.String, "rows": pl.Int64})


def run_similarity(store: Store, model: str, kind: Kind, *, progress: Progress = None, on_total: Progress = None,
                   **options) -> TaskResult:
    """Similarity grid of `kind` (`options`: those of `similarity_grid`), saved to the `similarity`
    table, with its per-depth means."""
    frame = similarity_grid(store, model, kind, progress=progress, on_total=on_total, **options)
    save_grid(store, frame)
    return TaskResult(model, store.is_random_init(model), {SIMILARITY_TABLE: frame}, grid_summary(frame, kind))


def run_cross_model(store: Store, model_a: str, model_b: str, *, progress: Progress = None,
                    **options) -> TaskResult:
    """Cross-model grid (`options`: those of `cross_model_grid`), saved to `similarity`, with its
    mean per depth pair."""
    from actstore.analyses.cross_model import cross_model_grid, cross_model_summary, save_cross_model

    frame = cross_model_grid(store, model_a, model_b, progress=progress, **options)
    save_cross_model(store, frame)
    random_init = bool(frame["random_init"].any())
    return TaskResult(model_a, random_init, {SIMILARITY_TABLE: frame}, cross_model_summary(frame))


def run_retrieval(store: Store, model: str, *, progress: Progress = None, on_total: Progress = None,
                  **options) -> TaskResult:
    """Retrieval grid (`options`: those of `retrieval_grid`), saved to the `retrieval` table, with
    mean P@1 and xsim error per depth and direction."""
    frame, items = retrieval_grid_with_items(store, model, progress=progress, on_total=on_total, **options)
    save_retrieval(store, frame, items)
    return TaskResult(model, store.is_random_init(model), {RETRIEVAL_TABLE: frame, ITEMS_TABLE: items},
                      retrieval_summary(frame))


def run_tsne(store: Store, model: str, *, progress: Progress = None, **options) -> TaskResult:
    """t-SNE maps (`options`: those of `tsne_maps`), saved to the `tsne` table, with points and KL
    divergence per depth."""
    frame = tsne_maps(store, model, progress=progress, **options)
    save_tsne(store, frame)
    return TaskResult(model, store.is_random_init(model), {TSNE_TABLE: frame}, tsne_summary(frame))


def run_neurons(store: Store, model: str, *, progress: Progress = None, sites=None, global_k: int = 1000,
                n_boot: int = 200, **options) -> TaskResult:
    """The neuron-level tables, saved, with rows per table: per depth of hidden-state points
    (`options`: those of `neuron_tables`) and per neuron site (`site_neuron_tables`).

    Which run: `depths` only: those depths; `sites` only: those sites; neither: everything the
    model stores; both: both. Everything is computed before anything is saved, so a refused
    request (an unknown site, k above a site's width) leaves the store unchanged.
    """
    resolve_device(options.get("device"), what="the neuron analysis", torch_backend=False)
    depths = options.get("depths")
    tables = {} if sites and not depths else neuron_tables(store, model, progress=progress, **options)
    if sites or not depths:
        site_options = {key: options[key] for key in ("langs", "k", "seed", "corpus", "strict_k")
                        if key in options}
        tables.update(site_neuron_tables(store, model, sites=sites, global_k=global_k, n_boot=n_boot,
                                         progress=progress, **site_options))
    if not tables:
        raise AnalysisInputError(f"Nothing of model {model!r} to rank neurons of{' among ' + ','.join(depths) if depths else ''}; "
                                 "name neuron sites with --sites (not --points), or ingest points first.")
    save_neurons(store, {name: frame for name, frame in tables.items() if name not in SITE_TABLES})
    save_site_tables(store, {name: frame for name, frame in tables.items() if name in SITE_TABLES})
    return TaskResult(model, store.is_random_init(model), dict(tables), tables_summary(tables))


def run_probe(store: Store, model: str, *, progress: Progress = None, **options) -> TaskResult:
    """The language probe (`options`: those of `language_probe`), saved, with its rows as the summary."""
    frame = language_probe(store, model, progress=progress, **options)
    save_probe(store, frame)
    return TaskResult(model, store.is_random_init(model), {PROBE_TABLE: frame},
                      frame.select("depth", "modality", "accuracy", "ci_lo", "ci_hi", "chance", "n"))
