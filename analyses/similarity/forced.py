"""Canonical correlations that equal 1 by construction, whatever the data.

Centred columns of n paired rows live in the (n-1)-dim space orthogonal to the constant vector,
or in less when rows repeat: if rows i and j of x are the same vector, every centred column of x
has equal entries i and j. In general the centred columns of x lie in S_x, the vectors of that
space constant on each class of identical x rows (dimension c_x - 1 for c_x classes), those of y
in S_y, and both in S_x + S_y, of dimension

    span = c_x + c_y - c_xy - 1

where c_xy counts the classes of the finest partition both refine (rows joined when identical on
either side: the connected components of the graph linking each row's x class to its y class).
Without repeated rows on one side, span = n - 1. This is the rank of the centred class-indicator
rows [1_x | 1_y], a property of the row pattern alone, not of the vectors' values.

After the SVD step, X and Y are subspaces of dimensions kx and ky inside that span-dimensional
space, so they share at least kx + ky - span dimensions; each shared dimension is a canonical
correlation of exactly 1. So

    forced = max(0, kx + ky - span)

of the min(kx, ky) correlations carry no information about the data. SVCCA averages them in
(pure noise at n = 300, d = 1024 scores ~0.81, n = 3 gives 1.0 for any data, and 300 rows holding
100 distinct ones behave as n = 100); PWCCA is not even a function of the data once two or more
correlations are 1 (see `pwcca`). Every result row stores `forced` beside kx and ky, and the
report explains it where it is non-zero.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def _byte_classes(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    rows = x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).ravel()
    return np.unique(rows, return_inverse=True)[1].ravel()


def row_classes(x: np.ndarray) -> np.ndarray:
    """Label per row of a 2-D array: rows with identical bytes share a label (0..classes-1).

    Exact and cheap in the usual case: rows whose first few values already differ are distinct,
    so the whole rows are compared only when those leading values repeat.
    """
    head = _byte_classes(x[:, :8])
    if int(head.max(initial=-1)) + 1 == x.shape[0]:
        return head
    return _byte_classes(x)


def centred_span(x_labels: np.ndarray, y_labels: np.ndarray) -> int:
    """Dimension of the space the centred columns of both paired sides can span, from the row
    classes of each side (`row_classes` of the rows compared, in pair order); n - 1 without
    repeats."""
    n = int(np.asarray(x_labels).shape[0])
    _, ix = np.unique(x_labels, return_inverse=True)
    _, iy = np.unique(y_labels, return_inverse=True)
    cx, cy = int(ix.max(initial=-1)) + 1, int(iy.max(initial=-1)) + 1
    if cx == n or cy == n:  # one side without repeats: the other's pattern constrains nothing
        return n - 1
    graph = coo_matrix((np.ones(n), (ix.ravel(), cx + iy.ravel())), shape=(cx + cy, cx + cy))
    joined = connected_components(graph, directed=False)[0]
    return cx + cy - int(joined) - 1


def span_of(x: np.ndarray, y: np.ndarray) -> int:
    """`centred_span` of two paired arrays (rows compared as they are)."""
    return centred_span(row_classes(x), row_classes(y))


def forced_correlations(kx, ky, span):
    """max(0, kx + ky - span) for scalars (returns int) or arrays (returns an int array).

    kx, ky: directions kept per side (negative for measures without them: gives 0);
    span: dimension the centred rows span (`centred_span`; n - 1 for n distinct paired rows).
    """
    kx, ky, span = np.asarray(kx), np.asarray(ky), np.asarray(span)
    out = np.where((kx < 0) | (ky < 0), 0, np.maximum(0, kx + ky - span)).astype(np.int64)
    return int(out) if out.ndim == 0 else out


def all_forced(forced, kx, ky) -> bool | np.ndarray:
    """True where every one of the min(kx, ky) correlations is forced: the score is 1 for any data."""
    forced = np.asarray(forced)
    hit = (forced > 0) & (forced >= np.minimum(np.asarray(kx), np.asarray(ky)))
    return hit if np.ndim(hit) else bool(hit)
