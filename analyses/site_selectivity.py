"""Selective neurons across every site of a model: AP per neuron, top-k, where the top ones sit.

Comparisons (each one sort per neuron column of the rows it compares, `neurons._SortedColumns`,
serving every target and both directions of that comparison):
- language-vs-rest within one modality: the site's rows of that modality (for a decoder site,
  decoding conditioned on that modality), target = each language;
- speech-vs-text within one language: only on sites whose rows hold both modalities (the decoder:
  the same neurons under both conditionings), target = each modality.
Both directions: `positive` (high activation = the target) and `negative` (low = the target).

Tables:
- top: per site and comparison, the k neurons of highest AP (ties: lower neuron index first), with
  the class prior (the AP of an uninformative neuron) beside them;
- spread: the `global_k` neurons of highest AP over ALL sites of the comparison (AP is
  scale-free, so neurons of different sites rank on one scale), counted per site, with the count
  expected if they were spread in proportion to the sites' widths: the site x layer heatmaps;
- overlap: per decoder-type site and language, how many of the top-k speech-conditioned and
  text-conditioned neurons coincide, with k*k/width expected by chance.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import polars as pl

from actstore.errors import AnalysisInputError
from actstore.analyses.neurons import _SortedColumns
from actstore.analyses.site_data import Site, SiteRows

DIRECTIONS = ("positive", "negative")
Key = tuple[str, str, str, str]  # (target_kind, target, within, direction)


def _best(ap: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest APs, ties by lower index (deterministic)."""
    k = min(k, ap.size)
    cand = np.argpartition(-ap, k - 1)[:k] if k < ap.size else np.arange(ap.size)
    threshold = ap[cand].min()
    cand = np.flatnonzero(ap >= threshold)  # every tie at the boundary, then cut in order
    return cand[np.lexsort((cand, -ap[cand]))][:k]


def comparisons(rows: SiteRows) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(target_kind, within, row mask, labels of those rows) for every comparison the site allows."""
    out = []
    lang = rows.meta["lang"].to_numpy()
    modality = rows.meta["modality"].to_numpy()
    for m in rows.modalities:
        mask = modality == m
        if np.unique(lang[mask]).size >= 2:
            out.append(("language", m, mask, lang[mask]))
    if len(rows.modalities) >= 2:
        for lg in sorted(set(lang.tolist())):
            mask = lang == lg
            if np.unique(modality[mask]).size >= 2:
                out.append(("modality", lg, mask, modality[mask]))
    return out


def site_ap(rows: SiteRows) -> dict[Key, np.ndarray]:
    """AP of every neuron of one site, per comparison key; one sort per column per comparison."""
    out: dict[Key, np.ndarray] = {}
    for kind, within, mask, labels in comparisons(rows):
        cols = _SortedColumns(rows.x[mask])
        for target in sorted(set(labels.tolist())):
            positive = labels == target
            for direction in DIRECTIONS:
                out[(kind, str(target), str(within), direction)] = cols.ap(positive, direction)
    return out


def top_frame(site: Site, aps: dict[Key, np.ndarray], priors: dict[Key, float], k: int) -> pl.DataFrame:
    """The top-k neurons of one site per comparison key."""
    parts = []
    for key, ap in aps.items():
        best = _best(ap, k)
        parts.append(pl.DataFrame({
            "target_kind": key[0], "target": key[1], "within": key[2], "direction": key[3],
            "rank": np.arange(1, best.size + 1, dtype=np.int64), "neuron": best.astype(np.int64),
            "ap": ap[best], "prior": priors[key]}))
    frame = pl.concat(parts) if parts else pl.DataFrame()
    return _site_columns(frame, site) if parts else frame


def _site_columns(frame: pl.DataFrame, site: Site) -> pl.DataFrame:
    return frame.with_columns(pl.lit(site.name).alias("depth"), pl.lit(site.stack).alias("stack"),
                              pl.lit(site.layer, pl.Int64).alias("layer"), pl.lit(site.kind).alias("site_type"))


def priors_of(rows: SiteRows) -> dict[Key, float]:
    """The positive share of each comparison key: the AP an uninformative neuron scores."""
    out = {}
    for kind, within, _, labels in comparisons(rows):
        for target in set(labels.tolist()):
            for direction in DIRECTIONS:
                out[(kind, str(target), str(within), direction)] = float(np.mean(labels == target))
    return out


def overlap_frame(site: Site, aps: dict[Key, np.ndarray], k: int) -> pl.DataFrame:
    """Per language and direction, shared top-k neurons of speech- and text-conditioned rows."""
    rows = []
    for (kind, target, within, direction), ap in aps.items():
        if kind != "language" or within != "speech":
            continue
        other = aps.get((kind, target, "text", direction))
        if other is None:
            continue
        s, t = set(_best(ap, k).tolist()), set(_best(other, k).tolist())
        rows.append({"lang": target, "direction": direction, "k": len(s), "shared": len(s & t),
                     "jaccard": len(s & t) / len(s | t), "expected_by_chance": len(s) * len(t) / ap.size,
                     "shared_neurons": sorted(s & t)})
    if not rows:
        return pl.DataFrame()
    return _site_columns(pl.DataFrame(rows, schema_overrides={"shared_neurons": pl.List(pl.Int64)}), site)


class GlobalTop:
    """The running top `k` neurons over sites per comparison key, and each key's site widths."""

    def __init__(self, k: int):
        self.k = k
        self.best: dict[Key, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # ap, site index, neuron
        self.universe: dict[Key, list[tuple[int, int]]] = {}  # (site index, width)

    def add(self, site_index: int, aps: dict[Key, np.ndarray]) -> None:
        for key, ap in aps.items():
            idx = _best(ap, self.k)
            new = (ap[idx], np.full(idx.size, site_index), idx)
            old = self.best.get(key)
            merged = new if old is None else tuple(np.concatenate(p) for p in zip(old, new))
            order = np.lexsort((merged[2], merged[1], -merged[0]))[: self.k]
            self.best[key] = tuple(p[order] for p in merged)
            self.universe.setdefault(key, []).append((site_index, ap.size))

    def spread(self, sites: Sequence[Site]) -> pl.DataFrame:
        """Per key and site: how many of the key's global top neurons sit there, and the count
        expected in proportion to width."""
        rows = []
        for key, (ap, site_idx, _) in self.best.items():
            total = sum(w for _, w in self.universe[key])
            counts = np.bincount(site_idx, minlength=len(sites))
            for i, width in self.universe[key]:
                rows.append({"target_kind": key[0], "target": key[1], "within": key[2], "direction": key[3],
                             "depth": sites[i].name, "stack": sites[i].stack, "layer": sites[i].layer,
                             "site_type": sites[i].kind, "width": width, "global_k": int(ap.size),
                             "n_top": int(counts[i]), "share": counts[i] / ap.size,
                             "expected": ap.size * width / total, "min_ap": float(ap.min())})
        return pl.DataFrame(rows)


def selectivity_over_sites(load: Callable[[Site], SiteRows], sites: Sequence[Site], *, k: int,
                           global_k: int, strict_k: bool = False, progress=None) -> dict[str, pl.DataFrame]:
    """top / spread / overlap frames over `sites` (each read by `load`, one at a time).

    strict_k: refuse k above a site's width (the CLI: the user asked for k); else keep every neuron.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise AnalysisInputError(f"k={k!r} must be a positive integer number of neurons.")
    if global_k < 1:
        raise AnalysisInputError(f"global_k={global_k!r} must be a positive integer number of neurons.")
    tops, overlaps, glob = [], [], GlobalTop(global_k)
    for i, site in enumerate(sites):
        rows = load(site)
        if strict_k and k > rows.x.shape[1]:
            raise AnalysisInputError(f"k={k} exceeds the width of site {site.name} "
                                     f"({rows.x.shape[1]} neurons); pass --k {rows.x.shape[1]} or less.")
        aps = site_ap(rows)
        tops.append(top_frame(site, aps, priors_of(rows), k))
        overlaps.append(overlap_frame(site, aps, k))
        glob.add(i, aps)
        if progress is not None:
            progress(1)
    if not glob.best:
        raise AnalysisInputError("No site holds rows of two languages (or of both modalities for one "
                                 "language); selectivity needs two classes: ingest more languages.")
    nonempty = [f for f in overlaps if f.height]
    return {"top": pl.concat([f for f in tops if f.height]), "spread": glob.spread(sites),
            "overlap": pl.concat(nonempty) if nonempty else pl.DataFrame()}
