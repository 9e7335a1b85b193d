"""Representational similarity analysis (RSA) with cosine similarity and Pearson correlation.

For paired sets X (n, dx), Y (n, dy): S_X = cosine-similarity matrix of X's rows, S_Y likewise;
the score is the Pearson correlation of their strict upper triangles. It is invariant to rotations
and per-row positive scaling of either side, and 1 for a rotated copy.
"""

from __future__ import annotations

import numpy as np

from actstore.analyses.similarity.measure import Measure
from actstore.errors import AnalysisInputError


class PearsonRSA(Measure):
    """prepare: unit rows; restrict: the subset's cosine matrix; score: Pearson of upper triangles."""

    description = "RSA: Pearson correlation of the two cosine-similarity matrices (toy plug-in)"

    def prepare(self, x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise AnalysisInputError("a set has an all-zero row, which has no cosine; drop that row.")
        return x / norms

    def restrict(self, prepared: np.ndarray, rows: np.ndarray) -> np.ndarray:
        unit = prepared[rows]
        return unit @ unit.T

    def score(self, sx: np.ndarray, sy: np.ndarray, perm: np.ndarray | None = None) -> float:
        if perm is not None:
            sy = sy[np.ix_(perm, perm)]
        iu = np.triu_indices(sx.shape[0], k=1)
        a, b = sx[iu] - sx[iu].mean(), sy[iu] - sy[iu].mean()
        denom = np.sqrt((a @ a) * (b @ b))
        if not denom > 0:
            raise AnalysisInputError("a set's cosine similarities are all equal, so RSA is undefined; "
                                     "pass rows that differ.")
        return float(a @ b / denom)
