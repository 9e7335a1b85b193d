"""Canonical correlations that equal 1 by construction, whatever the data.

Centred sets of n paired rows live in the (n-1)-dim space orthogonal to the constant vector.
After the SVD step, X and Y are subspaces of that space of dimensions kx and ky, and two such
subspaces share at least kx + ky - (n - 1) dimensions; each shared dimension is a canonical
correlation of exactly 1. So

    forced = max(0, kx + ky - (n - 1))

of the min(kx, ky) correlations carry no information about the data. SVCCA averages them in
(pure noise at n = 300, d = 1024 scores ~0.81, and n = 3 gives 1.0 for any data); PWCCA is not
even a function of the data once two or more correlations are 1 (see `pwcca`). Every result row
stores `forced` beside kx and ky, and the report explains it where it is non-zero.
"""

from __future__ import annotations

import numpy as np


def forced_correlations(kx, ky, n):
    """max(0, kx + ky - (n - 1)) for scalars (returns int) or arrays (returns an int array).

    kx, ky: directions kept per side (negative for measures without them: gives 0);
    n: paired rows compared.
    """
    kx, ky, n = np.asarray(kx), np.asarray(ky), np.asarray(n)
    out = np.where((kx < 0) | (ky < 0), 0, np.maximum(0, kx + ky - (n - 1))).astype(np.int64)
    return int(out) if out.ndim == 0 else out


def all_forced(kx, ky, n) -> bool | np.ndarray:
    """True where every one of the min(kx, ky) correlations is forced: the score is 1 for any data."""
    f = forced_correlations(kx, ky, n)
    hit = (np.asarray(f) > 0) & (np.asarray(f) >= np.minimum(np.asarray(kx), np.asarray(ky)))
    return hit if np.ndim(hit) else bool(hit)
