"""Mutual k-nearest-neighbour alignment (Huh et al. 2024, "The Platonic Representation Hypothesis").

For each sample i, N_x(i) is the set of its k nearest other samples in X by cosine similarity
(self excluded), N_y(i) the same in Y; the score is mean_i |N_x(i) ∩ N_y(i)| / k, in [0, 1].
It depends only on each side's cosine-similarity ranking, so it is invariant to rotations and
to per-row positive scaling of either side, and needs only the n x n Gram matrices
(cos_ij = G_ij / sqrt(G_ii G_jj)), which the batched engine already holds.

Ties at the k-th neighbour are counted fractionally, never broken by row index: if g candidates
are strictly closer than the k-th similarity and t candidates tie with it (|cos - cos_k| <=
1e-10), the g get weight 1 and each of the t gets (k - g) / t, so every row's weights sum to k.
The overlap of row i is sum_j wx_ij wy_ij, which is the expected |N_x(i) ∩ N_y(i)| when each
side breaks its ties uniformly at random and independently. Without this, duplicate rows (or
any exact tie) let the lowest index win in both spaces at once, which inflates the score and
makes it depend on row order. With no ties the weights are 0/1 and the score is the usual one.
"""

from __future__ import annotations

import numpy as np

from actstore.analyses.validation import check_k, check_pair
from actstore.errors import AnalysisInputError

from .measure import Measure


#: cosine similarities this close to the k-th one count as tied with it
TIE_TOLERANCE = 1e-10


def _cosines(g: np.ndarray) -> np.ndarray:
    """Cosine similarities from an uncentred Gram, self set to -inf (never a neighbour)."""
    norms = np.sqrt(np.clip(np.diag(g), 0.0, None))
    if np.any(norms == 0.0):
        raise AnalysisInputError(
            "a set has an all-zero row, which has no cosine neighbours; drop that row."
        )
    cos = g / norms[:, None] / norms[None, :]
    np.fill_diagonal(cos, -np.inf)
    return cos


def neighbour_weights(g: np.ndarray, k: int) -> np.ndarray:
    """(n, n) neighbour weights from an uncentred Gram: 1 for the strictly closer neighbours,
    (k - g) / t for each of the t ties at the k-th similarity, 0 otherwise; rows sum to k."""
    cos = _cosines(g)
    kth = -np.partition(-cos, k - 1, axis=1)[:, k - 1 : k]  # (n, 1) k-th largest similarity
    closer = cos > kth + TIE_TOLERANCE
    tied = np.abs(cos - kth) <= TIE_TOLERANCE
    slots = k - closer.sum(axis=1, keepdims=True)
    return closer + tied * (slots / tied.sum(axis=1, keepdims=True))


def knn_from_grams(gx: np.ndarray, gy: np.ndarray, k: int) -> float:
    """Mutual k-NN alignment from two uncentred Gram matrices of the same paired rows."""
    n = gx.shape[0]
    wx = neighbour_weights(gx, k)
    wy = neighbour_weights(gy, k)
    return float(np.einsum("ij,ij->", wx, wy) / (n * k))


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
