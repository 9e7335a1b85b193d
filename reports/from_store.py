"""Gather a model's provenance and stored results into `ReportInputs`, computing what is missing.

`build_report(store, model, out)` is what `actstore report` calls. With `compute_missing=True`
(the default) sections whose results are not stored are computed with the defaults of the
corresponding `actstore analyze ...` command and saved, so a report never silently lacks a
section; with `compute_missing=False` such a section says which command fills it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import polars as pl

from actstore.catalogue import Catalogue
from actstore.errors import ActstoreError
from actstore.store import Store
from actstore.analyses.aligned import CROSS_LINGUAL_KINDS, model_depths, stored_modalities
from actstore.analyses.grids import GridOptions, load_grid, save_grid, similarity_grid
from actstore.analyses.neuron_maps import load_neurons, neuron_tables, save_neurons
from actstore.analyses.retrieval_grid import load_retrieval, retrieval_grid, save_retrieval
from actstore.analyses.tsne_maps import load_tsne, save_tsne, tsne_maps
from actstore.reports.inputs import ReportInputs
from actstore.reports.render import render_report

log = logging.getLogger("actstore.report")


def provenance(store: Store, model: str, catalogue: Catalogue | None = None) -> dict:
    """Model, store version, runs and per-language counts for the report's first section."""
    catalogue = catalogue or Catalogue.load()
    counts = (store.scan_activations(model, with_vectors=False)
              .group_by("lang", "modality").agg(pl.col("sentence_id").n_unique().alias("n"))
              .collect())
    wide = counts.pivot(on="modality", index="lang", values="n")
    for m in ("speech", "text"):
        if m not in wide.columns:
            wide = wide.with_columns(pl.lit(0, dtype=pl.UInt32).alias(m))
    rows = []
    for r in wide.sort("lang").iter_rows(named=True):
        lang = catalogue.get(r["lang"]) if r["lang"] in catalogue else None
        rows.append({
            "lang": r["lang"], "name": lang.name if lang else "", "resource_level": lang.resource_level if lang else "",
            "script": lang.script if lang else "", "family": lang.family if lang else "",
            "n_speech": int(r["speech"] or 0), "n_text": int(r["text"] or 0),
        })
    runs = store.runs(model).select("run_id", "model", "source", "started_at", "ended_at", "status",
                                    "n_rows", "points", "dtype", "device", "package_version")
    return {
        "model": model, "random_init": store.is_random_init(model), "store_uri": store.uri,
        "store_version": store.activation_version(model), "schema_version": store.schema_version,
        "runs": runs, "languages": pl.DataFrame(rows),
    }


def _ends(store: Store, model: str, need: Sequence[str]) -> list[str]:
    """First and last depth having every modality in `need` (a small default for t-SNE etc.)."""
    depths = [d for d in model_depths(store, model) if all(m in d.points for m in need)]
    if not depths:
        return []
    return sorted({depths[0].name, depths[-1].name}, key=[d.name for d in depths].index)


def compute_missing(store: Store, model: str, *, measure: str = "svcca", tsne_per_language: int = 50,
                    seed: int = 0) -> None:
    """Compute and save every result the report needs that is not stored yet."""
    mods = stored_modalities(store, model)
    n_langs = store.scan_activations(model, with_vectors=False).select(pl.col("lang").n_unique()).collect().item()
    grid = load_grid(store, model, measure=measure)
    kinds_done = set() if grid is None else set(grid["kind"].unique().to_list())
    if mods == {"speech", "text"} and "cross-modal" not in kinds_done:
        log.info("computing cross-modal %s", measure)
        save_grid(store, similarity_grid(store, model, "cross-modal", options=GridOptions(measure=measure, seed=seed)))
    cl_kinds = [k for k, m in CROSS_LINGUAL_KINDS.items() if set(m) <= mods and k not in kinds_done]
    if n_langs >= 2 and cl_kinds:
        log.info("computing cross-lingual %s", measure)
        save_grid(store, similarity_grid(store, model, "cross-lingual", kinds=cl_kinds,
                                         options=GridOptions(measure=measure, seed=seed)))
    if load_retrieval(store, model) is None and (n_langs >= 2 or mods == {"speech", "text"}):
        log.info("computing retrieval")
        # one language: only speech-text retrieval exists (speech-speech/text-text need a pair)
        kinds = None if n_langs >= 2 else ["speech-text"]
        save_retrieval(store, retrieval_grid(store, model, kinds=kinds, seed=seed))
    if load_tsne(store, model) is None:
        log.info("computing t-SNE")
        save_tsne(store, tsne_maps(store, model, depths=_ends(store, model, sorted(mods)) or None,
                                   per_language=tsne_per_language, seed=seed))
    if any(v is None for v in load_neurons(store, model).values()) and n_langs >= 2:
        log.info("computing neuron tables")
        save_neurons(store, neuron_tables(store, model, seed=seed))


def report_inputs(store: Store, model: str, *, measure: str = "svcca") -> ReportInputs:
    """Everything stored for `model`, as the report's inputs (missing results stay None)."""
    store.require_model(model)
    neurons = load_neurons(store, model)
    return ReportInputs(
        provenance=provenance(store, model),
        similarity=load_grid(store, model, measure=measure),
        retrieval=load_retrieval(store, model),
        tsne=load_tsne(store, model),
        neurons_top=neurons["neurons_top"],
        neurons_overlap=neurons["neurons_overlap"],
        concentration=neurons["concentration"],
        measure=measure,
    )


def build_report(store: Store, model: str, out: str | Path, *, measure: str = "svcca",
                 compute: bool = True) -> Path:
    """Write the HTML report of `model` to `out` (atomically); returns its path."""
    out = Path(out)
    if out.exists() and out.is_dir():
        raise ActstoreError(f"{out} is a directory; pass a file path for --out, e.g. {out / 'report.html'}.")
    parent = out.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ActstoreError(f"Cannot write the report to {out}: {parent} is not a writable directory; pass another --out.")
    store.require_model(model)
    if compute:
        compute_missing(store, model, measure=measure)
    return render_report(report_inputs(store, model, measure=measure), out)
