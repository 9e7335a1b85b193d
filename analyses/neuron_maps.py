"""Neuron-level tables per depth (following the SeamlessM4T v2 neuron study).

- `neurons_top`: for each language, the dimensions whose activation best separates it from the
  other languages (average precision), ranked separately on speech rows and on text rows; and
  for each modality, the dimensions that best separate it from the other modality.
- `neurons_overlap`: per language, how many of its top-k dimensions speech and text share.
- `concentration`: per language and modality, the Gini coefficient of mean |activation| over
  dimensions (0: spread evenly; towards 1: a few dimensions carry it).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from actstore.errors import AnalysisInputError
from actstore.schema import CONCENTRATION_TABLE, NEURONS_OVERLAP_TABLE, NEURONS_TOP_TABLE
from actstore.store import Store
from actstore.analyses.aligned import first_points, language_levels, stored_modalities, choose_depths, load_depth_sets, select_recordings
from actstore.analyses.devices import resolve_device
from actstore.analyses.neurons import activation_concentration, modality_overlap, top_selective
from actstore.analyses.site_data import is_site
from actstore.analyses.results import current_rows, lang_set, load_results, save_results, stamp, widest_units

TOP_TABLE, OVERLAP_TABLE = NEURONS_TOP_TABLE, NEURONS_OVERLAP_TABLE
#: Rankings and overlaps compare a language with the others of the run: one unit per language set
#: (`langs`), replaced as a whole. Concentration is per (language, modality): replaced per row.
KEYS = {
    TOP_TABLE: ("model", "depth", "langs", "corpus", "target_kind", "target", "modality", "rank"),
    OVERLAP_TABLE: ("model", "depth", "langs", "corpus", "lang"),
    CONCENTRATION_TABLE: ("model", "depth", "corpus", "lang", "modality"),
}
UNITS = {TOP_TABLE: ("model", "depth", "langs", "corpus"), OVERLAP_TABLE: ("model", "depth", "langs", "corpus")}


def neuron_tables(store: Store, model: str, *, depths: Sequence[str] | None = None,
                  langs: Sequence[str] | None = None, k: int = 20, seed: int = 0,
                  progress=None, device: str | None = None, corpus: str | None = None,
                  strict_k: bool = False) -> dict[str, pl.DataFrame]:
    """Compute the three neuron-level tables for every chosen depth (not yet saved).

    corpus: the corpus whose sentences are analysed (None: the model's largest).
    strict_k: refuse k above a depth's width (the CLI: the user asked for k); else list every dim.

    device: the neuron analyses run on the CPU; None or "cpu" (anything else is refused).
    """
    resolve_device(device, what="the neuron analysis", torch_backend=False)
    modalities = tuple(sorted(stored_modalities(store, model)))
    lang_list = list(language_levels(store, model, langs))
    chosen = [d for d in choose_depths(store, model, depths, need=())
              if not all(is_site(p) for p in d.points.values())]  # sites: analyses/neuron_sites.py
    if not chosen:
        return {}
    selection = select_recordings(store, model, first_points(chosen), lang_list, seed=seed, corpus=corpus)
    tops, overlaps, conc = [], [], []
    for depth in chosen:
        mods = [m for m in modalities if m in depth.points]
        sets = load_depth_sets(store, model, depth, selection, mods)
        by_mod, lang_top = {}, {}
        for modality in mods:
            keys = sorted(key for key in sets.vectors if key[1] == modality)
            x = np.concatenate([sets.vectors[key] for key in keys])
            labels = np.concatenate([[key[0]] * sets.vectors[key].shape[0] for key in keys])
            by_mod[modality] = (x, labels)
            if strict_k and k > x.shape[1]:
                raise AnalysisInputError(f"k={k} exceeds the width of {depth.points[modality]} ({x.shape[1]} "
                                         f"dimensions); pass --k {x.shape[1]} or less.")
            if len(keys) >= 2:
                top = top_selective(x, labels, k=k).with_columns(
                    pl.lit("language").alias("target_kind"), pl.lit(modality).alias("modality"))
                lang_top[modality] = top
                tops.append(top.with_columns(pl.lit(depth.name).alias("depth"),
                                             pl.lit(depth.order).alias("point_order")))
            c = activation_concentration(x, labels).rename({"group": "lang"})
            conc.append(c.with_columns(pl.lit(modality).alias("modality"), pl.lit(depth.name).alias("depth"),
                                       pl.lit(depth.order).alias("point_order")))
        widths = {x.shape[1] for x in sets.vectors.values()}
        if len(mods) == 2 and len(widths) == 1:  # modality selectivity needs one dimension space
            xs, xt = by_mod["speech"][0], by_mod["text"][0]
            x = np.concatenate([xs, xt])
            labels = np.array(["speech"] * xs.shape[0] + ["text"] * xt.shape[0])
            top = top_selective(x, labels, k=k).with_columns(
                pl.lit("modality").alias("target_kind"), pl.lit("all").alias("modality"))
            tops.append(top.with_columns(pl.lit(depth.name).alias("depth"), pl.lit(depth.order).alias("point_order")))
            if "speech" in lang_top and "text" in lang_top:
                ov = modality_overlap(lang_top["speech"], lang_top["text"], n_dims=x.shape[1])
                overlaps.append(ov.select(pl.col("target").alias("lang"), pl.lit(k).alias("k"),
                                          pl.col("n_shared").alias("shared"), "jaccard", "expected_by_chance")
                                .with_columns(pl.lit(depth.name).alias("depth"), pl.lit(depth.order).alias("point_order")))
        if progress is not None:
            progress(1)
    out = {}
    for name, parts in ((TOP_TABLE, tops), (OVERLAP_TABLE, overlaps), (CONCENTRATION_TABLE, conc)):
        if parts:
            frame = pl.concat(parts, how="diagonal_relaxed")
            if name in UNITS:
                frame = frame.with_columns(pl.lit(lang_set(lang_list)).alias("langs"))
            frame = frame.with_columns(pl.lit(selection.corpus, pl.String).alias("corpus"))
            out[name] = stamp(frame, store, model)
    return out


def save_neurons(store: Store, tables: dict[str, pl.DataFrame]) -> None:
    """Write each neuron table by its key (rankings and overlaps: unit by unit)."""
    for name, frame in tables.items():
        save_results(store, name, frame, key=KEYS[name], unit_by=UNITS.get(name))


def load_neurons(store: Store, model: str, *, current: bool = True) -> dict[str, pl.DataFrame | None]:
    """Stored neuron tables of `model`; `current` keeps per depth the widest language set."""
    out = {name: load_results(store, name, model) for name in (TOP_TABLE, OVERLAP_TABLE, CONCENTRATION_TABLE)}
    if current:
        out = {name: (widest_units(frame) if name in UNITS else current_rows(frame, KEYS[name]))
               for name, frame in out.items()}
    return out
