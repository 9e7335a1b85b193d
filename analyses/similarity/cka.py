"""Linear CKA (Kornblith et al. 2019), biased and debiased, from Gram matrices.

With column-centred X (n, dx), Y (n, dy) and linear Grams K = X X^T, L = Y Y^T:

    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).

Biased: HSIC(K, L) ∝ tr(K L) = ||X^T Y||_F^2 (the centring is already in X and Y).
Debiased (debiased=True): the unbiased HSIC estimator (Song et al. 2012), with K~, L~ the Grams
with zeroed diagonals,

    HSIC_u = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n-3)),

which removes the positive bias of the plug-in estimator at small n (independent noise scores
~0 instead of ~d/n); it needs n >= 4 and can be slightly negative. Working on n x n Grams makes
the cost independent of the widths, and the batched engine reuses its Gram blocks here.
"""

from __future__ import annotations

import numpy as np

from actstore.analyses.validation import check_pair
from actstore.errors import AnalysisInputError

from .measure import Measure


def centred_gram(x: np.ndarray) -> np.ndarray:
    """Gram matrix of the column-centred set: C X X^T C, C = I - 11^T / n."""
    xc = x - x.mean(axis=0, keepdims=True)
    return xc @ xc.T


def centre_gram(g: np.ndarray) -> np.ndarray:
    """Double-centre an (uncentred) Gram matrix: C G C equals the Gram of the centred set."""
    row = g.mean(axis=0, keepdims=True)
    return g - row - row.T + g.mean()


def hsic_biased(k: np.ndarray, l: np.ndarray) -> float:
    """tr(K L) for centred Grams (the 1/(n-1)^2 factor cancels in CKA)."""
    return float(np.einsum("ij,ij->", k, l))


def hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    """Unbiased HSIC estimator (Song et al. 2012) of two Gram matrices, n >= 4."""
    n = k.shape[0]
    kt = k.copy()
    lt = l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    ksum, lsum = kt.sum(), lt.sum()
    term1 = float(np.einsum("ij,ij->", kt, lt))
    term2 = ksum * lsum / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * float(kt.sum(axis=0) @ lt.sum(axis=1))
    return (term1 + term2 - term3) / (n * (n - 3))


def cka_from_grams(k: np.ndarray, l: np.ndarray, debiased: bool = False) -> float:
    """CKA from two centred Gram matrices of the same paired rows."""
    hsic = hsic_unbiased if debiased else hsic_biased
    kl, kk, ll = hsic(k, l), hsic(k, k), hsic(l, l)
    denom = np.sqrt(kk * ll) if kk > 0 and ll > 0 else 0.0
    if not denom > 0.0:
        raise AnalysisInputError(
            "a set has zero variance (all rows identical), so CKA is undefined; pass rows that differ."
        )
    return float(kl / denom)


def cka(x: np.ndarray, y: np.ndarray, *, debiased: bool = False) -> float:
    """Linear CKA of paired sets x (n, dx), y (n, dy); debiased=True uses the unbiased HSIC."""
    xa, ya = check_pair(x, y)
    if debiased and xa.shape[0] < 4:
        raise AnalysisInputError(
            f"debiased CKA needs at least 4 paired samples but got {xa.shape[0]}; pass more "
            "sentences or use debiased=False."
        )
    return cka_from_grams(centred_gram(xa), centred_gram(ya), debiased=debiased)


class CKA(Measure):
    """Linear CKA as a batched measure: one Gram per set, a re-centred Gram block per subset."""

    description = "linear CKA (Kornblith et al. 2019), biased HSIC"
    debiased: bool = False

    def prepare(self, x: np.ndarray) -> np.ndarray:
        return centred_gram(x)

    def restrict(self, prepared: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return centre_gram(prepared[np.ix_(rows, rows)])

    def score(self, sx: np.ndarray, sy: np.ndarray, perm: np.ndarray | None = None) -> float:
        if perm is not None:
            sy = sy[np.ix_(perm, perm)]
        return cka_from_grams(sx, sy, self.debiased)


class DebiasedCKA(CKA):
    """Linear CKA with the unbiased HSIC estimator (near 0 for independent sets at any n)."""

    description = "linear CKA with the unbiased HSIC estimator (Song et al. 2012); n >= 4"
    debiased = True

    def min_rows(self) -> int:
        return 4
