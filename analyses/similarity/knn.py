"""Mutual k-nearest-neighbour alignment (Huh et al. 2024, "The Platonic Representation Hypothesis").

For each sample i, N_x(i) is the set of its k nearest other samples in X by cosine similarity
(self excluded), N_y(i) the same in Y; the score is mean_i |N_x(i) ∩ N_y(i)| / k, in [0, 1].
It depends only on each side's cosine-similarity ranking, so it is invariant to rotations and
to per-row positive scaling of either side, and needs only the n x n Gram matrices
(cos_ij = G_ij / sqrt(G_ii G_jj)), which the batched engine already holds.
"""

from __future__ import annotations

import numpy as np

from actstore.analyses.validation import check_k, check_pair
from actstore.errors import AnalysisInputError

from .measure import Measure


def neighbours_from_gram(g: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k most cosine-similar other rows, from an uncentred Gram."""
    norms = np.sqrt(np.clip(np.diag(g), 0.0, None))
    if np.any(norms == 0.0):
        raise AnalysisInputError(
            "a set has an all-zero row, which has no cosine neighbours; drop that row."
        )
    cos = g / norms[:, None] / norms[None, :]
    np.fill_diagonal(cos, -np.inf)
    # stable full sort: ties broken by index so the result is deterministic
    return np.argsort(-cos, axis=1, kind="stable")[:, :k]


def knn_from_grams(gx: np.ndarray, gy: np.ndarray, k: int) -> float:
    """Mutual k-NN alignment from two uncentred Gram matrices of the same paired rows."""
    n = gx.shape[0]
    nx = neighbours_from_gram(gx, k)
    ny = neighbours_from_gram(gy, k)
    mx = np.zeros((n, n), dtype=bool)
    my = np.zeros((n, n), dtype=bool)
    rows = np.arange(n)[:, None]
    mx[rows, nx] = True
    my[rows, ny] = True
    return float((mx & my).sum() / (n * k))


def knn_alignment(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mutual k-NN alignment of paired sets x (n, dx), y (n, dy), cosine neighbours, self excluded."""
    xa, ya = check_pair(x, y)
    k = check_k(k, xa.shape[0])
    return knn_from_grams(xa @ xa.T, ya @ ya.T, k)


class MutualKNN(Measure):
    """Mutual k-NN alignment as a batched measure: one uncentred Gram per set, blocks per subset."""

    description = "mutual k-nearest-neighbour alignment, cosine neighbours (Huh et al. 2024)"
    uses_k = True

    def min_rows(self) -> int:
        return self.options.k + 1

    def prepare(self, x: np.ndarray) -> np.ndarray:
        return x @ x.T

    def restrict(self, prepared: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return prepared[np.ix_(rows, rows)]

    def score(self, sx: np.ndarray, sy: np.ndarray, perm: np.ndarray | None = None) -> float:
        if perm is not None:
            sy = sy[np.ix_(perm, perm)]
        return knn_from_grams(sx, sy, self.options.k)
