"""Similarity measures between paired sets of pooled vectors (SVCCA, PWCCA, CKA, mutual k-NN).

Single pairs: `svcca`, `pwcca`, `cka`, `knn_alignment`. Whole grids of one extraction point:
`actstore.analyses.similarity.batched.score_pairs`, which runs any registered `Measure`
(`measure` defines the protocol, `registry` finds measures by entry point `actstore.measures`).
"""

from .cka import cka
from .knn import knn_alignment
from .measure import Measure, MeasureOptions, PairRequest, Score
from .pwcca import PWCCAResult, pwcca
from .registry import get_measure, measure_names, registered_measures
from .svcca import SVCCAResult, svcca

__all__ = ["svcca", "pwcca", "cka", "knn_alignment", "SVCCAResult", "PWCCAResult", "Measure",
           "MeasureOptions", "PairRequest", "Score", "get_measure", "measure_names",
           "registered_measures"]
