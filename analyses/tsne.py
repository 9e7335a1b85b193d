"""t-SNE of pooled vectors, configured to reproduce scikit-learn's defaults (the study's) faster.

The study ran `sklearn.manifold.TSNE` with its defaults: perplexity 30, 1000 iterations, PCA
initialisation (rescaled so PC1 has standard deviation 1e-4), early exaggeration 12 for the first
250 iterations with momentum 0.5, then momentum 0.8, learning_rate "auto" =
max(n / 12 / 4, 50) in sklearn's units, Barnes-Hut gradients, exact kNN over 3 * perplexity + 1
neighbours.

openTSNE (FFT-accelerated interpolation for n >= 10,000, Barnes-Hut below) optimises the same
objective. It is configured here to follow the same schedule:

- perplexity-based affinities over the exact 3 * perplexity + 1 nearest neighbours, as sklearn
  (found here by blocked BLAS + top-k, faster at d ~ 1000 than openTSNE's approximate Annoy
  index or sklearn's brute force); each row's squared distances are shifted by their minimum
  before openTSNE calibrates the Gaussians, which leaves P unchanged in exact arithmetic but
  avoids a failure of openTSNE's binary search on large distances (see `_shifted`);
- PCA initialisation rescaled to standard deviation 1e-4 (openTSNE adds a tiny seeded jitter);
- 250 iterations at exaggeration 12 and momentum 0.5, then max_iter - 250 at exaggeration 1 and
  momentum 0.8, the optimiser state (gains, update) reset between the two phases as sklearn does;
- learning rate max(n / 12, 200) in openTSNE's units: sklearn's gradient carries a factor 4 that
  openTSNE's lacks (sklearn's TSNE docstring), so sklearn's max(n / 48, 50) is this rate. (The
  openTSNE default "auto" would switch to n / 1 after exaggeration.)

Perplexity too large for n: the kNN graph holds at most n - 1 neighbours, so a perplexity above
(n - 1) / 3 is reduced to (n - 1) / 3 with a warning, and the value used is returned in
`TSNEResult.perplexity`. Fewer than 5 points, or max_iter below 250 (the exaggeration phase), is
an error.

KL divergence: openTSNE's `kl_divergence` of the final embedding, sklearn's `kl_divergence_`;
both are KL(P || Q) with P restricted to the kNN graph, so the two are comparable.

Widths: speech and text sets of different widths are zero-padded to the widest (`pad_widths`),
as the study did; padding adds the same zeros to every row of the narrower set, which changes no
distance inside that set.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import polars as pl

from actstore.analyses.validation import check_matrix
from actstore.errors import AnalysisInputError

__all__ = ["TSNEResult", "joint_tsne", "pad_widths", "tsne_embed"]

_EXAGGERATION = 12.0
_EXAGGERATION_ITER = 250
_METHODS = ("auto", "bh", "fft", "sklearn")


@dataclass(frozen=True)
class TSNEResult:
    """2-D coordinates, the final KL divergence, and how they were computed."""

    coords: np.ndarray = field(repr=False)  # (n, 2) float64
    kl_divergence: float
    method: str  # "opentsne-bh", "opentsne-fft" or "sklearn-barnes_hut"
    perplexity: float  # the perplexity actually used (reduced when n was small)
    learning_rate: float  # in the library's own units


#: below this many points t-SNE defaults to one thread (see `tsne_embed`)
SMALL_MAP = 2000


def _opentsne_available() -> bool:
    try:
        import openTSNE  # noqa: F401
    except ImportError:
        return False
    return True


def _check_input(x: object) -> np.ndarray:
    # a private float64 copy: the optimisers may work in place
    return check_matrix(x, "x", min_rows=5, what="t-SNE", rows_word="points").astype(np.float64)


def _effective_perplexity(perplexity: float, n: int) -> float:
    if not np.isfinite(perplexity) or perplexity <= 0:
        raise AnalysisInputError(f"perplexity={perplexity!r} must be a positive number (e.g. 30).")
    limit = (n - 1) / 3.0
    if perplexity > limit:
        warnings.warn(
            f"perplexity {perplexity} is too large for {n} points; using {limit:.2f} "
            "((n - 1) / 3) instead.",
            UserWarning,
            stacklevel=3,
        )
        return limit
    return float(perplexity)


def _resolve_method(method: str, n: int) -> str:
    if method not in _METHODS:
        raise AnalysisInputError(
            f"method={method!r} is not known; use one of {', '.join(_METHODS)}."
        )
    if method == "sklearn":
        return method
    if not _opentsne_available():
        if method != "auto":
            raise AnalysisInputError(
                f"method={method!r} needs openTSNE, which is not installed; install openTSNE or "
                "use method='sklearn'."
            )
        return "sklearn"
    if method == "auto":
        return "bh" if n < 10_000 else "fft"
    return method


def _exact_knn(x: np.ndarray, k: int, block_bytes: int = 256 * 2**20) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (self excluded) by euclidean distance, blocked BLAS.

    d(i, j)^2 = |x_i|^2 + |x_j|^2 - 2 x_i . x_j in float32, one (block, n) slab at a time, top-k
    by `torch.topk` (numpy's argpartition is far slower). Same graph as sklearn's exact kNN up
    to float32 rounding, and several times faster than sklearn's or Annoy's for d ~ 1000.
    """
    import torch

    # centring leaves distances unchanged and keeps |x|^2 small next to d^2 (float32 cancellation)
    xf = np.ascontiguousarray(x - x.mean(axis=0), dtype=np.float32)
    n = xf.shape[0]
    sq = np.einsum("ij,ij->i", xf, xf)
    rows = max(1, min(n, block_bytes // (4 * n)))
    buf = np.empty((rows, n), dtype=np.float32)
    neighbours = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        s = buf[: stop - start]
        np.matmul(xf[start:stop], xf.T, out=s)  # s = x_i . x_j
        s *= 2.0
        s -= sq[None, :]  # s = 2 x_i.x_j - |x_j|^2 = |x_i|^2 - d^2: larger is nearer
        s[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not its own neighbour
        vals, idx = torch.topk(torch.from_numpy(s), k, dim=1, largest=True, sorted=True)
        neighbours[start:stop] = idx.numpy()
        d2 = sq[start:stop, None] - vals.numpy().astype(np.float64)
        distances[start:stop] = np.sqrt(np.maximum(d2, 0.0))
    return neighbours, distances


def _shifted(distances: np.ndarray) -> np.ndarray:
    """sqrt(d^2 - min_j d^2) per row: the same perplexity-calibrated P, well conditioned.

    p_{j|i} = exp(-beta_i d_ij^2) / sum_k exp(-beta_i d_ik^2) is unchanged when a row constant
    is subtracted from every d_ij^2. openTSNE 1.0.4's binary search misses the target
    perplexity when all squared distances of a row are large (e.g. ~2000 for 1024-d pooled
    vectors: rows came out at perplexity 63 instead of 30); after the shift it matches sklearn's
    conditional P to 1e-5.
    """
    d2 = distances**2
    return np.sqrt(np.maximum(d2 - d2.min(axis=1, keepdims=True), 0.0))


def _affinities(x: np.ndarray, perplexity: float, n_jobs: int):
    """openTSNE affinities P over the exact 3 * perplexity + 1 nearest neighbours (as sklearn)."""
    from openTSNE import affinity
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    neighbours, distances = _exact_knn(x, min(x.shape[0] - 1, int(3 * perplexity + 1)))
    return affinity.PerplexityBasedNN(
        perplexity=perplexity,
        knn_index=PrecomputedNeighbors(neighbours, _shifted(distances)),
        n_jobs=n_jobs,
    )


def _run_opentsne(
    x: np.ndarray, perplexity: float, max_iter: int, seed: int, n_jobs: int, gradient: str
) -> tuple[np.ndarray, float, float]:
    from openTSNE import TSNEEmbedding, initialization
    from openTSNE.tsne import gradient_descent

    n = x.shape[0]
    learning_rate = max(n / _EXAGGERATION, 200.0)
    affinities = _affinities(x, perplexity, n_jobs)
    init = initialization.pca(x, n_components=2, random_state=seed)
    embedding = TSNEEmbedding(
        init, affinities, negative_gradient_method=gradient, n_jobs=n_jobs, random_state=seed
    )
    # FFT settings, measured on 20,000 x 1024 against sklearn's KL: a coarser grid (2 points
    # per interval) throughout, with 4 interpolation points instead of 3 in the final phase that
    # decides the KL: KL +1.5% at ~25% less time than openTSNE's defaults (+2.3%); 4 points with
    # the fine grid reach +0.1% but take twice as long.
    fast = {"ints_in_interval": 2} if gradient == "fft" else {}
    accurate = {"ints_in_interval": 2, "n_interpolation_points": 4} if gradient == "fft" else {}
    embedding.optimize(
        n_iter=_EXAGGERATION_ITER, exaggeration=_EXAGGERATION, momentum=0.5,
        learning_rate=learning_rate, inplace=True, **fast,
    )
    embedding.optimizer = gradient_descent()  # sklearn restarts gains and momentum here
    embedding.optimize(
        n_iter=max_iter - _EXAGGERATION_ITER, exaggeration=1.0, momentum=0.8,
        learning_rate=learning_rate, inplace=True, **accurate,
    )
    return np.asarray(embedding, dtype=np.float64), float(embedding.kl_divergence), learning_rate


def _run_sklearn(
    x: np.ndarray, perplexity: float, max_iter: int, seed: int, n_jobs: int
) -> tuple[np.ndarray, float, float]:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    model = TSNE(
        n_components=2, perplexity=perplexity, max_iter=max_iter, init="pca",
        learning_rate="auto", random_state=seed, n_jobs=n_jobs,
    )
    with threadpool_limits(limits=n_jobs, user_api="openmp"):  # sklearn's BH threads ignore n_jobs
        coords = model.fit_transform(x)
    return np.asarray(coords, dtype=np.float64), float(model.kl_divergence_), float(model.learning_rate_)


def tsne_embed(
    x: np.ndarray,
    *,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    seed: int = 0,
    n_jobs: int | None = None,
    method: str = "auto",
) -> TSNEResult:
    """Embed the rows of x (n, d) in 2-D with sklearn's default t-SNE schedule.

    method: "auto" (openTSNE, Barnes-Hut below 10,000 points and FFT above; sklearn when
    openTSNE is missing), "bh" or "fft" (openTSNE), "sklearn" (scikit-learn's TSNE, the study's
    exact tool). n_jobs: threads (default: all cores; one below SMALL_MAP points). The same seed gives the same coordinates
    (bit for bit); the KL value may differ in the last digits (a threaded sum).
    """
    arr = _check_input(x)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 250:
        raise AnalysisInputError(
            f"max_iter={max_iter!r} must be an integer of at least 250 (the early exaggeration "
            "phase); the study used 1000."
        )
    chosen = _resolve_method(method, arr.shape[0])
    p = _effective_perplexity(perplexity, arr.shape[0])
    # small maps (a report's per-language sample) run on one thread: there, openTSNE's thread pool
    # costs more than it saves (120 points on a busy 2-core machine: 143 s on 2 threads, 23 s on 1)
    default = 1 if arr.shape[0] < SMALL_MAP else (os.cpu_count() or 1)
    threads = default if n_jobs is None else int(n_jobs)
    if chosen == "sklearn":
        coords, kl, lr = _run_sklearn(arr, p, int(max_iter), seed, threads)
        name = "sklearn-barnes_hut"
    else:
        coords, kl, lr = _run_opentsne(arr, p, int(max_iter), seed, threads, chosen)
        name = f"opentsne-{chosen}"
    return TSNEResult(coords=coords, kl_divergence=kl, method=name, perplexity=p, learning_rate=lr)


def pad_widths(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack 2-D arrays of different widths into one, zero-padding each to the widest.

    [(n1, d1), (n2, d2), ...] -> (n1 + n2 + ..., max d), rows in input order.
    """
    mats = [np.asarray(a) for a in arrays]
    if not mats:
        raise AnalysisInputError("arrays is empty; pass at least one (n, d) array.")
    for i, m in enumerate(mats):
        if m.ndim != 2 or 0 in m.shape:
            raise AnalysisInputError(
                f"arrays[{i}] has shape {m.shape}; pass only non-empty 2-D (n, d) arrays."
            )
    width = max(m.shape[1] for m in mats)
    dtype = np.result_type(*mats, np.float32)
    out = np.zeros((sum(m.shape[0] for m in mats), width), dtype=dtype)
    row = 0
    for m in mats:
        out[row : row + m.shape[0], : m.shape[1]] = m
        row += m.shape[0]
    return out


def joint_tsne(
    sets: Sequence[tuple[np.ndarray, Sequence[object]]], **tsne_kwargs: object
) -> tuple[TSNEResult, pl.DataFrame]:
    """One t-SNE over several labelled sets (e.g. speech and text of one layer) together.

    sets: [(x_i (n_i, d_i), labels_i (n_i,)), ...]; widths are zero-padded to the widest.
    Returns the TSNEResult and DataFrame(set, label, x, y) with one row per input row, in input
    order (set = position in `sets`, label as a string). tsne_kwargs go to `tsne_embed`.
    """
    if not sets:
        raise AnalysisInputError("sets is empty; pass at least one (array, labels) pair.")
    set_ids, labels = [], []
    for i, (x, lab) in enumerate(sets):
        lab = np.asarray(lab)
        n = np.asarray(x).shape[0] if np.asarray(x).ndim else 0
        if lab.ndim != 1 or lab.shape[0] != n:
            raise AnalysisInputError(
                f"sets[{i}] has {n} rows but {lab.size} labels; pass one label per row."
            )
        set_ids.append(np.full(n, i, dtype=np.int64))
        labels.extend(str(v) for v in lab.tolist())
    result = tsne_embed(pad_widths([x for x, _ in sets]), **tsne_kwargs)  # type: ignore[arg-type]
    frame = pl.DataFrame(
        {
            "set": np.concatenate(set_ids),
            "label": labels,
            "x": result.coords[:, 0],
            "y": result.coords[:, 1],
        }
    )
    return result, frame
