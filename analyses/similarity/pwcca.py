"""Projection-weighted CCA: Morcos, Raghu & Bengio (2018)'s formula, on the study's reduced sets.

What this computes, exactly. Both sets are centred and SVD-reduced as in SVCCA (X_c = U S V^T,
k directions kept), so the "neurons" are the principal components z_j = s_j u_j (columns of
U_k S_k), not the raw dimensions. With U_x^T U_y = A diag(rho) B^T, the canonical variates are
the orthonormal n-vectors h_i = U_x a_i, and Morcos et al.'s weights and score are

    alpha_i ∝ sum_j |<h_i, z_j>| = sum_j s_j |A_ji|,   pwcca = sum_i alpha_i rho_i,   sum alpha = 1,

taken on the side with fewer kept directions (x on a tie).

What this is NOT: google/svcca's `pwcca.compute_pwcca`. That code forms its "directions" as
coef_x (acts - mean) + mean with coef_x = u^T, the canonical directions in WHITENED coordinates:
it omits the Sigma_xx^{-1/2} whitening (which `cca_core` applies when it computes directions
itself), so its vectors are not the canonical variates; it then orthonormalises them with a QR
(Gram-Schmidt in correlation order), weights the uncentred activations, and its y branch reads
acts1. Numbers from it and from this module are therefore not interchangeable. The test suite checks this module against the formula
written out with explicit whitening (covariance CCA on the principal components) to ~1e-15.

Degenerate regime. When two or more canonical correlations equal 1 (which happens by
construction once kx + ky - span >= 2, see `forced`), the canonical variates of that block
are any orthonormal basis of it, and the weights (sums of absolute values) change with the basis
the solver returns (a fault campaign got 0.8006 and 0.8072 on the same inputs). PWCCA is then
not a function of the data, so `pwcca` returns score NaN with `degenerate=True` and warns (the
batched grids store it as null with `degenerate = true`); SVCCA, a plain mean and so basis free,
stays defined there, but read it beside its `forced` count.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from actstore.analyses.validation import check_keep, check_pair

from .backend import get_backend
from .forced import forced_correlations, span_of
from .measure import Measure, Score
from .reduction import CentredSet, Reduction, kept_count, reduce_subset


@dataclass(frozen=True)
class PWCCAResult:
    """PWCCA score (NaN when degenerate), kept directions, correlations, weights (sum 1)."""

    score: float
    kx: int
    ky: int
    correlations: np.ndarray
    weights: np.ndarray
    n: int = 0  # paired rows
    degenerate: bool = False  # two or more correlations are 1: the score depends on the solver
    #: canonical correlations that are 1 by construction: max(0, kx + ky - span); see `forced`
    forced: int = 0


#: a correlation this close to 1 counts as 1 (solvers return forced ones as 1 - O(1e-15))
UNIT_TOLERANCE = 1e-8


def is_degenerate(rho: np.ndarray) -> bool:
    """True when >= 2 correlations are 1 but not all are: the weights then depend on the basis.

    (When all are 1 the score is 1 for any basis, so it stays defined.)
    """
    unit = int(np.count_nonzero(rho >= 1.0 - UNIT_TOLERANCE))
    return 2 <= unit < rho.shape[0]


def pwcca_from_bases(
    ux: np.ndarray, sx: np.ndarray, uy: np.ndarray, sy: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """PWCCA from orthonormal reduced bases (any common row coordinates) and their singular values.

    Returns (score, correlations, weights); the bases may be in any orthonormal coordinates of
    the sample space (e.g. the Gram route's), since only U_x^T U_y enters. The score is NaN when
    the problem is degenerate (`is_degenerate`: two or more correlations equal 1).
    """
    a, rho, bt = np.linalg.svd(ux.T @ uy, full_matrices=False)
    rho = np.clip(rho, 0.0, 1.0)
    if ux.shape[1] <= uy.shape[1]:
        weights = np.abs(a).T @ sx  # (r,) with r = kx
    else:
        weights = np.abs(bt) @ sy
    weights = weights / weights.sum()
    if is_degenerate(rho):
        return float("nan"), rho, weights
    return float(weights @ rho), rho, weights


def pwcca(
    x: np.ndarray,
    y: np.ndarray,
    keep: float = 0.9,
    *,
    backend: str = "numpy",
    device: str | None = None,
) -> PWCCAResult:
    """PWCCA of paired sets x (n, dx), y (n, dy) after keeping `keep` of each side's variance.

    In the degenerate regime (see the module docstring) the score is NaN, `degenerate` is True
    and a RuntimeWarning says why and what to change.
    """
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
    n, span = xa.shape[0], span_of(xa, ya)
    forced = forced_correlations(kx, ky, span)
    degenerate = bool(np.isnan(score))
    if degenerate:
        warnings.warn(
            f"PWCCA is undefined here: {int(np.count_nonzero(rho >= 1.0 - UNIT_TOLERANCE))} canonical "
            f"correlations equal 1 (kx={kx} + ky={ky} > {span}, the span of the {n} centred rows, "
            f"forces {forced}), so the weights depend on the solver; compare more "
            "rows, keep less variance, or use SVCCA.", RuntimeWarning, stacklevel=2)
    return PWCCAResult(score=score, kx=kx, ky=ky, correlations=rho, weights=weights, n=n,
                       degenerate=degenerate, forced=forced)


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
