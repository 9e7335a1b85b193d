"""Input checks at the analyses' boundary: one place, one sentence per problem.

Every analysis receives matrices of pooled vectors (rows = samples, paired across sides where
the analysis compares two sets) and a few scalars. Anything that cannot give a meaningful number
is refused here with an `AnalysisInputError` (an `ActstoreError` and a `ValueError`, so library
callers can catch the standard type) naming the argument and the fix, so the maths can assume
clean float64 input. scikit-learn's `check_array` / `check_scalar` do the conversion and range
checks; their messages are replaced by ours so that the CLI prints one actionable sentence.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_array, check_scalar

from actstore.errors import AnalysisInputError

#: fewest paired rows any similarity measure accepts
MIN_ROWS = 3


def check_matrix(x: object, name: str, *, min_rows: int = 1, dtype=np.float64,
                 what: str = "this analysis", rows_word: str = "paired samples",
                 kinds: str = "fiu") -> np.ndarray:
    """`x` as a finite 2-D array (n_samples, n_features) of `dtype`, or an AnalysisInputError.

    dtype: one dtype, or a list (kept when `x` has one of them, else converted to the first), as
    in sklearn's `check_array`; kinds: the numpy dtype kinds accepted ("fiu": float, int).
    A torch tensor is read through numpy. No copy is made when `x` already has the dtype.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise AnalysisInputError(
            f"{name} has shape {arr.shape} but must be 2-D (n_samples, n_features) and numeric; "
            "reshape it or stack the vectors into a matrix."
        )
    if arr.dtype.kind not in kinds:
        raise AnalysisInputError(f"{name} has dtype {arr.dtype}; pass a numeric (float or int) array.")
    if arr.shape[1] < 1:
        raise AnalysisInputError(f"{name} has no feature columns; pass vectors of width >= 1.")
    if arr.shape[0] < 1:
        raise AnalysisInputError(f"{name} has no rows; pass at least {max(min_rows, 1)} samples.")
    try:
        arr = check_array(arr, dtype=dtype, ensure_all_finite=True, copy=False,
                          ensure_min_samples=1, ensure_min_features=1)
    except ValueError:
        raise AnalysisInputError(
            f"{name} contains NaN or infinite values; drop or repair those rows before comparing."
        ) from None
    if arr.shape[0] < min_rows:
        raise AnalysisInputError(
            f"{name} has {arr.shape[0]} rows but {what} needs at least {min_rows} {rows_word}; "
            "pass more sentences."
        )
    return arr


def check_set(x: object, name: str) -> np.ndarray:
    """One side of a similarity comparison: finite float64 (n, d) with n >= MIN_ROWS."""
    return check_matrix(x, name, min_rows=MIN_ROWS, what="a similarity")


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


def check_keep(keep: object) -> float:
    """`keep` is the fraction of variance the SVD step retains: a number in (0, 1]."""
    try:
        check_scalar(keep, "keep", numbers.Real, min_val=0.0, max_val=1.0,
                     include_boundaries="right")
    except TypeError:
        raise AnalysisInputError(f"keep={keep!r} is not a number; pass a fraction in (0, 1].") from None
    except ValueError:
        raise AnalysisInputError(
            f"keep={keep!r} is outside (0, 1]; pass the fraction of variance to keep, e.g. 0.9."
        ) from None
    return float(keep)


def check_k(k: object, n: int, *, name: str = "k", candidates: int | None = None) -> int:
    """A neighbour count: an integer 1 <= k <= candidates.

    candidates defaults to n - 1 (k-NN within one set: a row is not its own neighbour); retrieval
    across two sets passes the other side's row count.
    """
    top = n - 1 if candidates is None else candidates
    try:
        if isinstance(k, bool):
            raise TypeError
        check_scalar(k, name, numbers.Integral, min_val=1, max_val=max(top, 1))
        if k > top:
            raise ValueError
    except (TypeError, ValueError):
        raise AnalysisInputError(
            f"{name}={k!r} is not an integer between 1 and the {top} candidate rows; pass an integer "
            f"from 1 to {top}."
        ) from None
    return int(k)


def check_count(value: object, name: str, *, min_val: int = 1, example: str = "") -> int:
    """A positive integer count (`n`, `repeats`, `n_boot`, ...) of at least `min_val`."""
    try:
        if isinstance(value, bool):
            raise TypeError
        check_scalar(value, name, numbers.Integral, min_val=min_val)
    except (TypeError, ValueError):
        hint = f"; pass e.g. {example}" if example else "; pass a count"
        raise AnalysisInputError(f"{name}={value!r} must be an integer >= {min_val}{hint}.") from None
    return int(value)


def check_open_fraction(value: object, name: str, *, example: str = "0.95") -> float:
    """A number strictly between 0 and 1 (e.g. a confidence level)."""
    try:
        check_scalar(value, name, numbers.Real, min_val=0.0, max_val=1.0, include_boundaries="neither")
    except (TypeError, ValueError):
        raise AnalysisInputError(f"{name}={value!r} must lie in (0, 1); pass e.g. {example}.") from None
    return float(value)


def check_rows(rows: object, n_set: int, what: str) -> np.ndarray:
    """Row indices into a set of `n_set` rows: a 1-D integer array, every index in range."""
    arr = np.asarray(rows)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise AnalysisInputError(
            f"{what} must be a 1-D array of integer row indices; pass e.g. np.arange(n)."
        )
    arr = np.ascontiguousarray(arr, dtype=np.intp)
    if arr.size and (arr.min() < 0 or arr.max() >= n_set):
        raise AnalysisInputError(
            f"{what} has indices outside 0..{n_set - 1}; select rows that exist in that set."
        )
    return arr
