"""SVCCA (Raghu et al. 2017) exactly as the study computes it.

Given paired sets X (n, dx) and Y (n, dy):

1. centre the columns;
2. SVD-reduce each side, X_c = U S V^T, keeping the fewest k directions with
   sum_{i<=k} s_i^2 / sum_i s_i^2 >= keep (a 1e-10 tolerance makes keep=1.0 mean "full rank",
   never the zero-variance directions left by rank deficiency);
3. CCA between the reduced sets. CCA is invariant to invertible linear maps of either side, so
   the reduced set X_c V_k = U_k S_k may be replaced by its orthonormal basis U_k; the canonical
   correlations are then the singular values of U_x^T U_y (the cosines of the principal angles
   between the two column spaces);
4. score = mean of all min(kx, ky) canonical correlations.

This equals google/svcca `cca_core.get_cca_similarity` (covariance CCA, epsilon 1e-10) on the
reduced sets to ~1e-7 and is faster and better conditioned. SVCCA is inflated when k approaches n
(pure noise at n=300, d=1024 scores ~0.81), so always read it beside k and a null.

Forced correlations: centred sets of n rows live in the (n-1)-dim space orthogonal to the
constant vector (in fewer dimensions when rows repeat: the `span` of `forced`), and two
subspaces of dimensions kx and ky there share at least kx + ky - span dimensions. So whatever
the data, at least

    forced = max(0, kx + ky - span)      (span = n - 1 unless rows repeat)

canonical correlations are exactly 1 by construction (`forced.forced_correlations`). In the study's
regime (n ~ 200-300, d = 1024, 90% variance) that is a large share of every score, and with
kx = ky = n - 1 (e.g. n = 3) every correlation is forced and the score is 1.0 for any data.
Results carry `forced` beside kx and ky so a reader can see it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from actstore.analyses.validation import check_keep, check_pair

from .backend import get_backend
from .forced import forced_correlations, span_of
from .measure import Measure, PairRequest, Score
from .reduction import KEEP_TOLERANCE, CentredSet, Reduction, kept_count, reduce_subset, sum_correlations

__all__ = ["SVCCA", "SVCCAResult", "svcca", "kept_count", "KEEP_TOLERANCE"]


@dataclass(frozen=True)
class SVCCAResult:
    """One SVCCA comparison: the score, the kept directions per side, all correlations."""

    score: float
    kx: int
    ky: int
    correlations: np.ndarray  # (min(kx, ky),) descending, in [0, 1]

    n: int = 0  # paired rows (0: unknown)
    #: canonical correlations that are 1 by construction (kx + ky > the centred rows' span); `forced`
    forced: int = 0


def reduce_set(xc, keep: float, be, name: str):
    """Orthonormal basis (n, k) of the top-k principal directions of a centred set, and k."""
    u, s, _ = be.svd(xc)
    k = kept_count(be.to_numpy(s) ** 2, keep, name)
    return u[:, :k], k


def svcca(
    x: np.ndarray,
    y: np.ndarray,
    keep: float = 0.9,
    *,
    backend: str = "numpy",
    device: str | None = None,
) -> SVCCAResult:
    """SVCCA of paired sets x (n, dx) and y (n, dy); see the module docstring for the maths."""
    xa, ya = check_pair(x, y)
    keep = check_keep(keep)
    be = get_backend(backend, device)
    ux, kx = reduce_set(be.centre(be.asarray(xa)), keep, be, "x")
    uy, ky = reduce_set(be.centre(be.asarray(ya)), keep, be, "y")
    rho = np.clip(be.to_numpy(be.svdvals(ux.T @ uy)), 0.0, 1.0)
    forced = forced_correlations(kx, ky, span_of(xa, ya))
    return SVCCAResult(score=float(rho.mean()), kx=kx, ky=ky, correlations=rho, n=xa.shape[0], forced=forced)


class SVCCA(Measure):
    """The study's SVCCA as a batched measure (see the module docstring and `reduction`).

    prepare: the set centred by its mean and its Gram matrix; restrict: the subset's SVD
    reduction (from its Gram block when m - 1 <= d); score: mean canonical correlation from the
    reductions' bases, or from their complements when cheaper; the null permutes the reduced y
    basis, so it costs no new reduction.
    """

    description = "mean canonical correlation after an SVD step keeping --keep of the variance"
    uses_keep = True
    supports_torch = True

    def prepare(self, x: np.ndarray) -> CentredSet:
        return CentredSet.of(x)

    def restrict(self, prepared: CentredSet, rows: np.ndarray) -> Reduction:
        return reduce_subset(prepared, rows, self.options.keep)

    def score(self, sx: Reduction, sy: Reduction, perm: np.ndarray | None = None) -> Score:
        return Score(sum_correlations(sx, sy, perm) / min(sx.k, sy.k), sx.k, sy.k)

    def score_grid_torch(self, sets: dict[Hashable, np.ndarray], pairs: Sequence[PairRequest], *,
                         null: bool, seed: int, device: str,
                         progress: Callable[[int], object] | None = None) -> dict[str, np.ndarray]:
        from .batched_torch import svcca_grid_torch

        centred = {key: x - x.mean(axis=0, keepdims=True) for key, x in sets.items()}
        return svcca_grid_torch(centred, pairs, keep=self.options.keep, null=null, seed=seed,
                                device=device, progress=progress)
