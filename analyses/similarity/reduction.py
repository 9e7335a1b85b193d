"""SVD reduction of a row subset through its Gram block (the engine behind batched SVCCA).

For a set X (N, d) with n < d, every row subset S (m rows, repeats allowed) has Gram block
G_SS = X_S X_S^T, and the centred subset's Gram is C G_SS C (C = I - 11^T/m). Its eigenpairs are
(s_i^2, u_i): the squared singular values and left singular vectors of the centred subset, so the
SVD step of SVCCA costs one m x m eigendecomposition instead of an m x d SVD, and every subset of
one set is a sub-block of one Gram matrix computed once.

Centred data live in 1-perp, the (m-1)-dim space orthogonal to the constant vector. We work in an
explicit orthonormal basis H of 1-perp: the first a = m-1 columns of the Householder reflector
Q = I - 2ww^T that swaps 1/sqrt(m) and e_m. Then C G C = H (H^T G H) H^T, and K = H^T G H is
(Q G Q)[:a, :a], an O(m^2) rank-2 update of G. Eigenvectors V of K (a x a) are a full orthonormal
basis of 1-perp: the top k span the reduced set, the other a-k its complement inside 1-perp (which
holds the null directions too when the subset's rank is below a, e.g. repeated rows or d < m-1).
Because H is shared by every subset of size m, U_x^T U_y = V_x^T V_y for paired subsets.

When m - 1 > d the Gram block is larger than the data, so the reduction is a thin SVD of the
centred rows instead (`DataReduction`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from actstore.errors import AnalysisInputError

KEEP_TOLERANCE = 1e-10


def kept_count(s2: np.ndarray, keep: float, name: str = "x") -> int:
    """Fewest leading directions whose variance (squared singular values, descending) reaches keep.

    k = min{k : cumsum(s^2)_k / sum(s^2) >= keep - 1e-10}.
    """
    s2 = np.clip(np.asarray(s2, dtype=np.float64), 0.0, None)
    total = float(s2.sum())
    if not total > 0.0:
        raise AnalysisInputError(
            f"{name} has zero variance (all rows identical); pass sets whose rows differ."
        )
    cum = np.cumsum(s2) / total
    k = int(np.searchsorted(cum, keep - KEEP_TOLERANCE, side="left")) + 1
    return min(k, int(s2.shape[0]))


@lru_cache(maxsize=64)
def householder_vector(m: int) -> np.ndarray:
    """Unit w with (I - 2ww^T) e_m = 1/sqrt(m): its first m-1 columns are a basis H of 1-perp."""
    w = np.full(m, 1.0 / np.sqrt(m))
    w[-1] -= 1.0
    w /= np.linalg.norm(w)
    w.setflags(write=False)
    return w


def project_gram(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """K = H^T G H = (Q G Q)[:a, :a] with Q = I - 2ww^T, via QGQ = G - w z^T - z w^T.

    z = 2 (G w - (w^T G w) w); O(m^2) instead of two m^3 products.
    """
    gw = g @ w
    z = 2.0 * (gw - (w @ gw) * w)
    a = g.shape[0] - 1
    wa, za = w[:a], z[:a]
    return g[:a, :a] - np.outer(wa, za) - np.outer(za, wa)


def lift(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Map H-coordinates (a, j) to sample space (m, j): H v = [v; 0] - 2 w (w[:a]^T v)."""
    a = v.shape[0]
    out = -2.0 * np.outer(w, w[:a] @ v)
    out[:a] += v
    return out


@dataclass(frozen=True)
class GramReduction:
    """Reduction of an m-row subset through its Gram block, in H-coordinates of 1-perp."""

    m: int
    k: int
    vecs: np.ndarray  # (a, a) eigenvectors of K, eigenvalue-descending columns
    s2: np.ndarray  # (a,) eigenvalues (= squared singular values), descending, clipped >= 0

    @property
    def a(self) -> int:
        return self.m - 1

    def top(self) -> np.ndarray:
        """(a, k) orthonormal basis of the reduced set in H-coordinates."""
        return self.vecs[:, : self.k]

    def bottom(self) -> np.ndarray:
        """(a, a-k) orthonormal basis of its complement inside 1-perp."""
        return self.vecs[:, self.k :]

    @cached_property
    def _basis(self) -> np.ndarray:
        return lift(self.top(), householder_vector(self.m))

    def basis(self) -> np.ndarray:
        """(m, k) orthonormal basis of the reduced set in sample space (rows = paired samples).

        Computed once per reduction (PWCCA uses it for the score and the null of every pair).
        """
        return self._basis

    def singular_values(self) -> np.ndarray:
        return np.sqrt(self.s2[: self.k])


@dataclass(frozen=True)
class DataReduction:
    """Reduction of an m-row subset by a thin SVD of its centred rows (used when m - 1 > d)."""

    m: int
    k: int
    u: np.ndarray  # (m, k)
    s: np.ndarray  # (k,)

    def basis(self) -> np.ndarray:
        return self.u

    def singular_values(self) -> np.ndarray:
        return self.s


Reduction = GramReduction | DataReduction


def reduce_gram_block(g: np.ndarray, keep: float, name: str = "x") -> GramReduction:
    """Reduce a subset from its (uncentred or offset) Gram block G_SS (m, m)."""
    m = g.shape[0]
    k_mat = project_gram(g, householder_vector(m))
    lam, vecs = np.linalg.eigh(k_mat)
    lam = np.clip(lam[::-1], 0.0, None)
    vecs = np.ascontiguousarray(vecs[:, ::-1])
    return GramReduction(m=m, k=kept_count(lam, keep, name), vecs=vecs, s2=lam)


def reduce_rows(xs: np.ndarray, keep: float, name: str = "x") -> DataReduction:
    """Reduce a subset from its rows (m, d) by a thin SVD of the centred rows."""
    xc = xs - xs.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    k = kept_count(s**2, keep, name)
    return DataReduction(m=xs.shape[0], k=k, u=u[:, :k], s=s[:k])


@dataclass(frozen=True, eq=False)
class CentredSet:
    """A whole set centred by its own column means, and its Gram matrix (prepared once)."""

    centred: np.ndarray  # (N, d)
    gram: np.ndarray  # (N, N) = centred @ centred.T

    @classmethod
    def of(cls, x: np.ndarray) -> "CentredSet":
        # centring by the full set's mean first keeps the Gram route precise under a large
        # common offset; each subset is re-centred exactly inside `reduce_gram_block`
        xc = x - x.mean(axis=0, keepdims=True)
        return cls(xc, xc @ xc.T)


def reduce_subset(prepared: CentredSet, rows: np.ndarray, keep: float,
                  name: str = "this row subset") -> Reduction:
    """SVD reduction of `rows` of a prepared set: the Gram block when m - 1 <= d, else the rows."""
    x = prepared.centred
    if rows.shape[0] - 1 <= x.shape[1]:
        return reduce_gram_block(prepared.gram[np.ix_(rows, rows)], keep, name)
    return reduce_rows(x[rows], keep, name)


def _nuclear(mat: np.ndarray) -> float:
    if mat.shape[0] == 0 or mat.shape[1] == 0:
        return 0.0
    return float(np.clip(np.linalg.svd(mat, compute_uv=False), 0.0, 1.0).sum())


def choose_path(kx: int, ky: int, a: int) -> str:
    """'complement' when the (a-kx) x (a-ky) problem is cheaper than the kx x ky one."""
    cx, cy = a - kx, a - ky
    direct = kx * ky * min(kx, ky)
    complement = cx * cy * min(cx, cy)
    return "complement" if complement < direct else "direct"


def sum_correlations(
    rx: Reduction, ry: Reduction, perm: np.ndarray | None = None, path: str | None = None
) -> float:
    """Sum of the min(kx, ky) canonical correlations between two reductions of paired rows.

    With `perm`, y's rows are permuted first (the shuffled-row null). The 'complement' path uses
    the CS-decomposition identity, exact for any subspaces X, Y of an a-dim space:

        sum sigma(U_x^T U_y) = sum sigma(U_x⊥^T U_y⊥) + (kx + ky - a),

    since the singular values in (0, 1) coincide and dim(X∩Y) - dim(X⊥∩Y⊥) = kx + ky - a.
    A row permutation P fixes 1 and so maps 1-perp onto itself, keeping the identity valid.
    """
    if not (isinstance(rx, GramReduction) and isinstance(ry, GramReduction)):
        by = ry.basis()
        if perm is not None:
            by = by[perm]
        return _nuclear(rx.basis().T @ by)
    a = rx.a
    if path is None:
        path = choose_path(rx.k, ry.k, a)
    if path == "complement":
        bx, by, offset = rx.bottom(), ry.bottom(), rx.k + ry.k - a
    else:
        bx, by, offset = rx.top(), ry.top(), 0
    if bx.shape[1] == 0 or by.shape[1] == 0:
        return float(offset)
    if perm is None:
        return _nuclear(bx.T @ by) + offset
    w = householder_vector(rx.m)
    return _nuclear(lift(bx, w).T @ lift(by, w)[perm]) + offset
