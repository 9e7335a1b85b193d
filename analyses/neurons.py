"""Neuron-level analyses: per-dimension selectivity (average precision) and concentration (Gini).

Following the SeamlessM4T v2 neuron study, a dimension (a "neuron" of a pooled vector) is
selective for a class (a language, or a modality) when its activation ranks that class's rows
above all other rows.

Selectivity = average precision (AP), exactly scikit-learn's `average_precision_score` of the
column as the score and `labels == target` as the truth. With the column sorted in descending
order and rows of equal value forming one tie group (one threshold),

    AP = sum over tie groups g of (pos_g / P) * (TP_g / N_g),

where pos_g is the number of target rows in g, P the number of target rows, and TP_g, N_g the
target rows and all rows with a value >= the group's value (precision at that threshold). An
uninformative dimension scores about the class prior P / n; a perfect one scores 1.

Vectorised: every column is sorted once (one argsort of the (d, n) transpose); the tie
structure (the last position of each position's tie group) is computed once; each target then
costs a gather and a sort of its own P rows' positions per column, O(d P log P), instead of d
calls to sklearn (so all languages of a run together cost about one pass over (d, n)).
The negative direction (AP of -x: the dimension is selective by being low) reuses the same sort
reversed.

Direction chosen: the default is the positive direction (high activation = the class), as in the
study. `top_selective(..., signed=True)` scores max(AP(+x), AP(-x)) and records the winning
sign (+1 or -1; +1 on equality), for models whose features are signed (no ReLU before pooling).

Concentration: the Gini coefficient of the mean |activation| per dimension,

    G = sum_i (2 i - d - 1) v_(i) / (d * sum_i v_i),  v_(1) <= ... <= v_(d),

which is 0 when every dimension carries the same mass and (d - 1) / d when one dimension
carries all of it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import polars as pl

from actstore.analyses.validation import check_matrix
from actstore.errors import AnalysisInputError

__all__ = [
    "activation_concentration",
    "gini",
    "modality_overlap",
    "selectivity_ap",
    "top_selective",
]

_DIRECTIONS = ("positive", "negative")


# --------------------------------------------------------------------------- validation


def _as_matrix(x: object, name: str = "x") -> np.ndarray:
    """A finite 2-D float array (float32 kept, other numbers as float64)."""
    return check_matrix(x, name, dtype=[np.float64, np.float32], kinds="fiub")


def _as_labels(labels: object, n: int, name: str = "labels") -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise AnalysisInputError(
            f"{name} has shape {lab.shape} but x has {n} rows; pass one label per row of x."
        )
    return lab


# --------------------------------------------------------------------------- average precision


class _SortedColumns:
    """Each column of x sorted once (descending), with its tie groups, for many targets."""

    def __init__(self, x: np.ndarray):
        xt = np.ascontiguousarray(x.T)  # (d, n): one row per dimension
        self.n = xt.shape[1]
        self.order = np.argsort(-xt, axis=1)  # descending; order within ties is irrelevant
        self._xs = np.take_along_axis(xt, self.order, axis=1)
        self.group_end = self._group_end(self._xs)
        self._group_end_rev: np.ndarray | None = None  # built on first negative-direction use
        self._pos: np.ndarray | None = None  # built on first use

    @staticmethod
    def _group_end(xs: np.ndarray) -> np.ndarray:
        """For each sorted position, the last position of its run of equal values."""
        n = xs.shape[1]
        is_end = np.ones(xs.shape, dtype=bool)
        is_end[:, :-1] = xs[:, :-1] != xs[:, 1:]
        pos = np.where(is_end, np.arange(n, dtype=np.int64), n)
        return np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1]

    def _positions(self) -> np.ndarray:
        """pos[j, r]: the sorted (descending) position of row r in column j (inverse of order)."""
        if self._pos is None:
            self._pos = np.empty(self.order.shape, dtype=np.int32)
            np.put_along_axis(self._pos, self.order, np.arange(self.n, dtype=np.int32)[None, :], axis=1)
        return self._pos

    def ap(self, positive: np.ndarray, direction: str) -> np.ndarray:
        """AP of every dimension for the boolean truth `positive` (n,) in one direction.

        Costs O(d * P log P) for P positive rows, not O(d * n): with the sorted positions
        s_1 < ... < s_P of the positives and their tie groups' last positions e_k (non-decreasing),
        the true positives at e_k's threshold are the positives with e_m <= e_k, i.e. one plus the
        last index m with e_m == e_k. So every language of a run costs its own rows only.
        """
        rows = np.flatnonzero(positive)
        s = self._positions()[:, rows]  # (d, P)
        group_end = self.group_end
        if direction == "negative":
            if self._group_end_rev is None:
                self._group_end_rev = self._group_end(self._xs[:, ::-1])
            s, group_end = self.n - 1 - s, self._group_end_rev
        s.sort(axis=1)
        e = np.take_along_axis(group_end, s.astype(np.intp), axis=1)
        p = rows.size
        is_last = np.ones(e.shape, dtype=bool)
        is_last[:, :-1] = e[:, :-1] != e[:, 1:]
        last = np.minimum.accumulate(np.where(is_last, np.arange(p), p)[:, ::-1], axis=1)[:, ::-1]
        return ((last + 1.0) / (e + 1.0)).sum(axis=1) / p


def _positive(lab: np.ndarray, target: object) -> np.ndarray:
    positive = lab == target
    n_pos = int(positive.sum())
    if n_pos == 0:
        raise AnalysisInputError(
            f"target {target!r} does not occur in labels; pass one of {sorted(set(lab.tolist()), key=str)[:10]}."
        )
    if n_pos == lab.shape[0]:
        raise AnalysisInputError(
            f"every row has label {target!r}, so nothing can be ranked below it; include rows "
            "of at least one other class."
        )
    return positive


def _check_direction(direction: str) -> str:
    if direction not in _DIRECTIONS:
        raise AnalysisInputError(
            f"direction={direction!r} is not known; use 'positive' or 'negative'."
        )
    return direction


def selectivity_ap(
    x: np.ndarray, labels: Sequence[object], target: object, *, direction: str = "positive"
) -> np.ndarray:
    """Per-dimension AP with which the activation ranks rows of `target` above the rest.

    x (n, d), labels (n,) -> ap (d,) in [0, 1], equal to `sklearn.metrics.
    average_precision_score(labels == target, x[:, j])` for each column j (direction
    "positive"), or of -x[:, j] (direction "negative").
    """
    arr = _as_matrix(x)
    lab = _as_labels(labels, arr.shape[0])
    positive = _positive(lab, target)
    return _SortedColumns(arr).ap(positive, _check_direction(direction))


def top_selective(
    x: np.ndarray, labels: Sequence[object], *, k: int = 20, signed: bool = False
) -> pl.DataFrame:
    """The k most selective dimensions of every label: DataFrame(target, dim, ap, rank, sign).

    One sort of x serves all labels; k larger than d lists all d dims. rank runs 1..k by descending AP, equal APs by ascending
    dim. signed=False scores AP(+x) (sign is always +1); signed=True scores max(AP(+x), AP(-x))
    and sign says which direction won. Labels are reported as strings, in sorted order.
    """
    arr = _as_matrix(x)
    lab = _as_labels(labels, arr.shape[0])
    d = arr.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise AnalysisInputError(f"k={k!r} must be a positive integer number of dimensions.")
    k = min(int(k), d)
    targets = sorted(set(lab.tolist()), key=str)
    if len(targets) < 2:
        raise AnalysisInputError(
            f"labels hold only one class ({targets[0]!r}); selectivity needs at least two."
        )
    cols = _SortedColumns(arr)
    frames = []
    for target in targets:
        positive = lab == target
        ap = cols.ap(positive, "positive")
        sign = np.ones(d, dtype=np.int8)
        if signed:
            ap_neg = cols.ap(positive, "negative")
            sign = np.where(ap_neg > ap, -1, 1).astype(np.int8)
            ap = np.maximum(ap, ap_neg)
        best = np.lexsort((np.arange(d), -ap))[:k]
        frames.append(
            pl.DataFrame(
                {
                    "target": [str(target)] * k,
                    "dim": best.astype(np.int64),
                    "ap": ap[best],
                    "rank": np.arange(1, k + 1, dtype=np.int64),
                    "sign": sign[best],
                }
            )
        )
    return pl.concat(frames)


def modality_overlap(
    top_speech: pl.DataFrame, top_text: pl.DataFrame, *, n_dims: int | None = None
) -> pl.DataFrame:
    """Per target, how many top dimensions the speech and the text rankings share.

    Inputs are `top_selective` frames of one model and point (same dimension space) computed on
    speech and on text rows. Output DataFrame(target, k_speech, k_text, n_shared, jaccard,
    shared_dims[, expected_by_chance]) for targets present in both; with n_dims = d, the
    expected overlap of two random top-k sets, k_speech * k_text / d, is added for reference.
    """
    for name, frame in (("top_speech", top_speech), ("top_text", top_text)):
        if not isinstance(frame, pl.DataFrame) or not {"target", "dim"} <= set(frame.columns):
            raise AnalysisInputError(
                f"{name} is not a top_selective() DataFrame with target and dim columns; pass "
                "the output of top_selective."
            )
    speech = _dims_by_target(top_speech)
    text = _dims_by_target(top_text)
    common = sorted(set(speech) & set(text))
    if not common:
        raise AnalysisInputError(
            "top_speech and top_text share no target; rank the same languages in both modalities."
        )
    rows = []
    for target in common:
        s, t = speech[target], text[target]
        shared = sorted(s & t)
        row: dict[str, object] = {
            "target": target,
            "k_speech": len(s),
            "k_text": len(t),
            "n_shared": len(shared),
            "jaccard": len(shared) / len(s | t),
            "shared_dims": shared,
        }
        if n_dims is not None:
            row["expected_by_chance"] = len(s) * len(t) / n_dims
        rows.append(row)
    return pl.DataFrame(rows, schema_overrides={"shared_dims": pl.List(pl.Int64)})


def _dims_by_target(frame: pl.DataFrame) -> dict[str, set[int]]:
    grouped = frame.group_by("target").agg(pl.col("dim"))
    return {str(t): set(int(v) for v in dims) for t, dims in grouped.iter_rows()}


# --------------------------------------------------------------------------- concentration


def gini(values: Iterable[float]) -> float:
    """Gini coefficient of non-negative values: 0 = spread evenly, (d - 1) / d = one value.

    G = sum_i (2 i - d - 1) v_(i) / (d * sum(v)) over the values sorted ascending (i = 1..d).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise AnalysisInputError(f"values has shape {v.shape}; pass a non-empty 1-D array.")
    if not np.isfinite(v).all() or (v < 0).any():
        raise AnalysisInputError(
            "values must be finite and non-negative (e.g. mean |activation| per dimension)."
        )
    total = v.sum()
    if total == 0:
        raise AnalysisInputError("values are all zero, so their concentration is undefined.")
    d = v.size
    weights = 2.0 * np.arange(1, d + 1) - d - 1
    return float(weights @ np.sort(v) / (d * total))


def activation_concentration(x: np.ndarray, groups: Sequence[object]) -> pl.DataFrame:
    """Gini of the mean |activation| over dimensions, per group: DataFrame(group, n, gini).

    x (n, d), groups (n,): e.g. languages, or "lang/modality" strings for both at once.
    Groups are reported as strings, in sorted order.
    """
    arr = _as_matrix(x)
    lab = _as_labels(groups, arr.shape[0], "groups")
    names, inverse = np.unique(lab.astype(str), return_inverse=True)
    rows = []
    for g, name in enumerate(names):
        members = inverse == g
        mean_abs = np.abs(arr[members]).mean(axis=0, dtype=np.float64)
        rows.append({"group": str(name), "n": int(members.sum()), "gini": gini(mean_abs)})
    return pl.DataFrame(rows)
