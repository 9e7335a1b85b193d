"""Projection-weighted CCA (Morcos, Raghu & Bengio 2018), after the study's SVD reduction.

google/svcca `pwcca.compute_pwcca` weights each canonical correlation rho_i by how much of the
(reduced) representation its canonical variate accounts for, on the side with fewer directions:

    alpha_i ∝ sum_j |<h_i, z_j>|,   pwcca = sum_i alpha_i rho_i,   sum_i alpha_i = 1,

where h_i are the orthonormal canonical variates (n-vectors) and z_j the reduced "neurons"
(columns of the reduced set). After the SVD step the reduced set is U_k S_k, so z_j = s_j u_j,
and with U_x^T U_y = A diag(rho) B^T the variates are h_i = U_x a_i, giving the closed form

    alpha_i ∝ sum_j s_j |A_ji|    (x side; B and s_y on the y side).

Ties (kx == ky) use x, as google/svcca does. Unlike google's code the variates are not shifted
back by the neuron means (that shift only adds noise to the weights of centred data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actstore.analyses.validation import check_keep, check_pair

from .backend import get_backend
from .measure import Measure, Score
from .reduction import CentredSet, Reduction, kept_count, reduce_subset


@dataclass(frozen=True)
class PWCCAResult:
    """PWCCA score, kept directions, the correlations and their projection weights (sum 1)."""

    score: float
    kx: int
    ky: int
    correlations: np.ndarray
    weights: np.ndarray


def pwcca_from_bases(
    ux: np.ndarray, sx: np.ndarray, uy: np.ndarray, sy: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """PWCCA from orthonormal reduced bases (any common row coordinates) and their singular values.

    Returns (score, correlations, weights); the bases may be in any orthonormal coordinates of
    the sample space (e.g. the Gram route's), since only U_x^T U_y enters.
    """
    a, rho, bt = np.linalg.svd(ux.T @ uy, full_matrices=False)
    rho = np.clip(rho, 0.0, 1.0)
    if ux.shape[1] <= uy.shape[1]:
        weights = np.abs(a).T @ sx  # (r,) with r = kx
    else:
        weights = np.abs(bt) @ sy
    weights = weights / weights.sum()
    return float(weights @ rho), rho, weights


def pwcca(
    x: np.ndarray,
    y: np.ndarray,
    keep: float = 0.9,
    *,
    backend: str = "numpy",
    device: str | None = None,
) -> PWCCAResult:
    """PWCCA of paired sets x (n, dx), y (n, dy) after keeping `keep` of each side's variance."""
    xa, ya = check_pair(x, y)
    keep = check_keep(keep)
    be = get_backend(backend, device)
    ux, sx, _ = be.svd(be.centre(be.asarray(xa)))
    uy, sy, _ = be.svd(be.centre(be.asarray(ya)))
    sx, sy = be.to_numpy(sx), be.to_numpy(sy)
    kx, ky = kept_count(sx**2, keep, "x"), kept_count(sy**2, keep, "y")
    score, rho, weights = pwcca_from_bases(
        be.to_numpy(ux[:, :kx]), sx[:kx], be.to_numpy(uy[:, :ky]), sy[:ky]
    )
    return PWCCAResult(score=score, kx=kx, ky=ky, correlations=rho, weights=weights)


class PWCCA(Measure):
    """PWCCA as a batched measure: SVCCA's shared reductions, projection-weighted correlations."""

    description = "projection-weighted CCA after the same SVD step (Morcos et al. 2018)"
    uses_keep = True

    def prepare(self, x: np.ndarray) -> CentredSet:
        return CentredSet.of(x)

    def restrict(self, prepared: CentredSet, rows: np.ndarray) -> Reduction:
        return reduce_subset(prepared, rows, self.options.keep)

    def score(self, sx: Reduction, sy: Reduction, perm: np.ndarray | None = None) -> Score:
        by = sy.basis() if perm is None else sy.basis()[perm]
        value = pwcca_from_bases(sx.basis(), sx.singular_values(), by, sy.singular_values())[0]
        return Score(value, sx.k, sy.k)
