"""Boundary checks shared by every similarity measure.

Measures receive two sets of pooled vectors whose rows are paired (row i of `x` and row i of `y`
are the same sentence). Anything that cannot give a meaningful number is refused here, once, with
one sentence naming the problem and the fix, so the maths below can assume clean float64 input.
"""

from __future__ import annotations

import numpy as np

from actstore.errors import AnalysisInputError

MIN_ROWS = 3


def check_set(x: object, name: str) -> np.ndarray:
    """Return `x` as a finite 2-D float64 array (n_samples, n_features) or raise."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor: measure it in numpy
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise AnalysisInputError(
            f"{name} has shape {arr.shape} but must be 2-D (n_samples, n_features); "
            "reshape it or stack the vectors into a matrix."
        )
    if arr.dtype.kind not in "fiu":
        raise AnalysisInputError(
            f"{name} has dtype {arr.dtype}; pass a numeric (float or int) array."
        )
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise AnalysisInputError(
            f"{name} contains NaN or infinite values; drop or repair those rows before comparing."
        )
    if arr.shape[0] < MIN_ROWS:
        raise AnalysisInputError(
            f"{name} has {arr.shape[0]} rows but a similarity needs at least {MIN_ROWS} paired "
            "samples; pass more sentences."
        )
    if arr.shape[1] < 1:
        raise AnalysisInputError(f"{name} has no feature columns; pass vectors of width >= 1.")
    return arr


def check_pair(x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate two paired sets: each a clean 2-D matrix, and the same number of rows."""
    xa = check_set(x, "x")
    ya = check_set(y, "y")
    if xa.shape[0] != ya.shape[0]:
        raise AnalysisInputError(
            f"x has {xa.shape[0]} rows but y has {ya.shape[0]}; rows must be paired sentences, "
            "so select the same sentence ids in the same order on both sides."
        )
    return xa, ya


def check_keep(keep: float) -> float:
    """`keep` is the fraction of variance the SVD step retains: it must lie in (0, 1]."""
    try:
        value = float(keep)
    except (TypeError, ValueError):
        raise AnalysisInputError(f"keep={keep!r} is not a number; pass a fraction in (0, 1].")
    if not (0.0 < value <= 1.0):
        raise AnalysisInputError(
            f"keep={keep!r} is outside (0, 1]; pass the fraction of variance to keep, e.g. 0.9."
        )
    return value


def check_k(k: int, n: int) -> int:
    """Neighbour count for k-NN measures: 1 <= k <= n - 1 (self is excluded)."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not (1 <= k <= n - 1):
        raise AnalysisInputError(
            f"k={k!r} neighbours is invalid for {n} samples; pass an integer from 1 to {n - 1}."
        )
    return int(k)
