"""Similarity measures between paired sets of pooled vectors (SVCCA, PWCCA, CKA, mutual k-NN).

Single pairs: `svcca`, `pwcca`, `cka`, `knn_alignment`. Whole grids of one extraction point:
`actstore.analyses.similarity.batched.score_pairs` (shared Gram-route reductions, complement trick, null).
"""

from .cka import cka
from .knn import knn_alignment
from .pwcca import PWCCAResult, pwcca
from .svcca import SVCCAResult, svcca

__all__ = ["svcca", "pwcca", "cka", "knn_alignment", "SVCCAResult", "PWCCAResult"]
