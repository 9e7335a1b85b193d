"""Score many paired-subset comparisons of one extraction point fast (the study's grids).

The study's grid is ~28,000 SVCCA scores (plus a shuffled-row null each) over ~60 sets of one
point, each compared on row subsets (sentence-id intersections). Per pair, the reference
procedure does two m x d SVDs and a covariance CCA (~42 ms). Here (see `reduction`):

1. each set is column-centred once (by its full-set mean, so the Gram route loses no precision
   to a large common offset) and its Gram matrix X X^T computed once;
2. each distinct (set, row subset) is reduced once from its Gram block (one (m-1)^2
   eigendecomposition in an explicit basis of 1-perp) and shared by every score that uses it;
3. the canonical correlations are the singular values of V_x^T V_y, or, when kx + ky is large,
   of the small complement problem V_x⊥^T V_y⊥ (CS-decomposition identity);
4. the null permutes the rows of the already reduced y basis: no new reduction;
5. requests are grouped into connected components of shared reductions and the components run
   on a thread pool (LAPACK releases the GIL; BLAS is pinned to one thread per worker).

The torch backend (`batched_torch`) stacks same-size Gram blocks and uses batched eigh on a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from actstore.errors import AnalysisInputError

from .backend import get_backend
from .cka import centre_gram, cka_from_grams
from .knn import knn_from_grams
from .pwcca import pwcca_from_bases
from .reduction import GramReduction, Reduction, reduce_gram_block, reduce_rows, sum_correlations
from .validation import MIN_ROWS, check_k, check_keep, check_set

MEASURES = ("svcca", "pwcca", "cka", "cka_debiased", "knn")
_MAX_COMPONENT = 64  # requests per task: split huge components so both cores stay busy


@dataclass(frozen=True, eq=False)
class PairRequest:
    """Compare rows `x_rows` of set `x_key` with rows `y_rows` of set `y_key` (row j with row j)."""

    x_key: Hashable
    x_rows: np.ndarray
    y_key: Hashable
    y_rows: np.ndarray


@dataclass
class _Prepared:
    """Validated inputs: per-set centred data and Grams, per-request row arrays."""

    centred: dict[Hashable, np.ndarray]
    grams: dict[Hashable, np.ndarray]  # centred-by-full-mean Grams (svcca, pwcca, cka)
    raw_grams: dict[Hashable, np.ndarray]  # uncentred Grams (knn: cosine needs raw vectors)
    rows: list[tuple[np.ndarray, np.ndarray]]


def _check_measure(measure: str) -> str:
    if measure not in MEASURES:
        raise AnalysisInputError(
            f"measure={measure!r} is unknown; choose one of {', '.join(MEASURES)}."
        )
    return measure


def _min_rows(measure: str, k: int) -> int:
    return {"cka_debiased": 4, "knn": k + 1}.get(measure, MIN_ROWS)


def _check_rows(rows: object, n_set: int, what: str) -> np.ndarray:
    arr = np.asarray(rows)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise AnalysisInputError(
            f"{what} must be a 1-D array of integer row indices; pass e.g. np.arange(n)."
        )
    arr = np.ascontiguousarray(arr, dtype=np.intp)
    if arr.size and (arr.min() < 0 or arr.max() >= n_set):
        raise AnalysisInputError(
            f"{what} has indices outside 0..{n_set - 1}; select rows that exist in that set."
        )
    return arr


def _prepare(
    sets: dict[Hashable, np.ndarray], requests: Sequence[PairRequest], measure: str, k: int,
    grams: bool = True,
) -> _Prepared:
    used: dict[Hashable, np.ndarray] = {}
    rows: list[tuple[np.ndarray, np.ndarray]] = []
    need = _min_rows(measure, k)
    for i, req in enumerate(requests):
        if not isinstance(req, PairRequest):
            raise AnalysisInputError(
                f"requests[{i}] is a {type(req).__name__}; pass PairRequest objects."
            )
        for key in (req.x_key, req.y_key):
            if key not in sets:
                raise AnalysisInputError(
                    f"requests[{i}] names set {key!r}, which is not in sets; add it or fix the key."
                )
            if key not in used:
                used[key] = check_set(sets[key], f"sets[{key!r}]")
        xr = _check_rows(req.x_rows, used[req.x_key].shape[0], f"requests[{i}].x_rows")
        yr = _check_rows(req.y_rows, used[req.y_key].shape[0], f"requests[{i}].y_rows")
        if xr.shape[0] != yr.shape[0]:
            raise AnalysisInputError(
                f"requests[{i}] pairs {xr.shape[0]} x rows with {yr.shape[0]} y rows; rows are "
                "paired sentences, so pass the same number on both sides."
            )
        if xr.shape[0] < need:
            raise AnalysisInputError(
                f"requests[{i}] has {xr.shape[0]} paired rows but {measure} needs at least {need}; "
                "pass more sentences."
            )
        rows.append((xr, yr))
    centred, gram, raw = {}, {}, {}
    for key, x in used.items():
        if measure == "knn":
            raw[key] = x @ x.T
        else:
            centred[key] = x - x.mean(axis=0, keepdims=True)
            if grams:
                gram[key] = centred[key] @ centred[key].T
    return _Prepared(centred=centred, grams=gram, raw_grams=raw, rows=rows)


def _components(keys: list[tuple[Hashable, Hashable]]) -> list[list[int]]:
    """Group request indices that share a reduction (union-find), splitting huge groups."""
    parent: dict[Hashable, Hashable] = {}

    def find(a: Hashable) -> Hashable:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for kx, ky in keys:
        parent[find(kx)] = find(ky)
    groups: dict[Hashable, list[int]] = {}
    for i, (kx, _) in enumerate(keys):
        groups.setdefault(find(kx), []).append(i)
    out: list[list[int]] = []
    for members in groups.values():
        out.extend(members[j : j + _MAX_COMPONENT] for j in range(0, len(members), _MAX_COMPONENT))
    return out


def _perm(seed: int, index: int, m: int) -> np.ndarray:
    """The null's row shuffle for request `index`: independent of order and threads."""
    return np.random.default_rng([seed, index]).permutation(m)


class _Scorer:
    """Runs one group of requests: computes its reductions once, then its scores."""

    def __init__(self, prep: _Prepared, requests, measure: str, keep: float, null: bool,
                 seed: int, k: int):
        self.prep, self.requests = prep, requests
        self.measure, self.keep, self.null, self.seed, self.k = measure, keep, null, seed, k

    def _reduce(self, key: Hashable, rows: np.ndarray) -> Reduction:
        x = self.prep.centred[key]
        name = f"set {key!r} (selected rows)"
        if rows.shape[0] - 1 <= x.shape[1]:
            return reduce_gram_block(self.prep.grams[key][np.ix_(rows, rows)], self.keep, name)
        return reduce_rows(x[rows], self.keep, name)

    def __call__(self, group: list[int]) -> list[tuple[int, float, int, int, int, float]]:
        if self.measure in ("svcca", "pwcca"):
            return self._run_cca(group)
        return self._run_gram(group)

    def _run_cca(self, group: list[int]):
        cache: dict[tuple[Hashable, bytes], Reduction] = {}

        def get(key: Hashable, rows: np.ndarray) -> Reduction:
            ck = (key, rows.tobytes())
            if ck not in cache:
                cache[ck] = self._reduce(key, rows)
            return cache[ck]

        out = []
        for i in group:
            req = self.requests[i]
            xr, yr = self.prep.rows[i]
            rx, ry = get(req.x_key, xr), get(req.y_key, yr)
            m = xr.shape[0]
            perm = _perm(self.seed, i, m) if self.null else None
            if self.measure == "svcca":
                r = min(rx.k, ry.k)
                score = sum_correlations(rx, ry) / r
                nul = sum_correlations(rx, ry, perm) / r if self.null else np.nan
            else:
                bx, by = rx.basis(), ry.basis()
                sx, sy = rx.singular_values(), ry.singular_values()
                score = pwcca_from_bases(bx, sx, by, sy)[0]
                nul = pwcca_from_bases(bx, sx, by[perm], sy)[0] if self.null else np.nan
            out.append((i, score, rx.k, ry.k, m, nul))
        return out

    def _run_gram(self, group: list[int]):
        out = []
        for i in group:
            req = self.requests[i]
            xr, yr = self.prep.rows[i]
            m = xr.shape[0]
            perm = _perm(self.seed, i, m) if self.null else None
            if self.measure == "knn":
                gx = self.prep.raw_grams[req.x_key][np.ix_(xr, xr)]
                gy = self.prep.raw_grams[req.y_key][np.ix_(yr, yr)]
                score = knn_from_grams(gx, gy, self.k)
                nul = knn_from_grams(gx, gy[np.ix_(perm, perm)], self.k) if self.null else np.nan
            else:
                deb = self.measure == "cka_debiased"
                gx = centre_gram(self.prep.grams[req.x_key][np.ix_(xr, xr)])
                gy = centre_gram(self.prep.grams[req.y_key][np.ix_(yr, yr)])
                score = cka_from_grams(gx, gy, deb)
                nul = cka_from_grams(gx, gy[np.ix_(perm, perm)], deb) if self.null else np.nan
            out.append((i, score, -1, -1, m, nul))
        return out


def score_pairs(
    sets: dict[Hashable, np.ndarray],
    requests: Sequence[PairRequest],
    *,
    measure: str = "svcca",
    keep: float = 0.9,
    null: bool = True,
    seed: int = 0,
    k: int = 10,
    backend: str = "numpy",
    device: str | None = None,
    n_jobs: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, np.ndarray]:
    """Score every request; returns 1-D arrays aligned with `requests`.

    Keys: score, kx, ky (kept directions; -1 for cka/knn), n (paired rows), and null (the same
    measure with y's rows shuffled by a permutation seeded by (seed, request index)) when
    null=True. `k` is the neighbour count for measure='knn'. `progress(n)` is called with the
    number of requests just finished (an increment, e.g. `tqdm.update`). `n_jobs` threads
    (default: all cores) share the work on the numpy backend. backend='torch' runs svcca
    as stacked batched eigendecompositions on `device` (other measures use the numpy path).
    """
    measure = _check_measure(measure)
    keep = check_keep(keep)
    be = get_backend(backend, device)
    requests = list(requests)
    if measure == "knn" and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        check_k(k, 2)  # raises the standard k error
    if be.name == "torch" and measure == "svcca":
        from .batched_torch import score_pairs_torch

        prep = _prepare(sets, requests, measure, int(k), grams=False)
        return score_pairs_torch(prep, requests, keep=keep, null=null, seed=seed,
                                 device=be.device, progress=progress)
    prep = _prepare(sets, requests, measure, int(k))
    if measure == "knn":
        for i, (xr, _) in enumerate(prep.rows):
            check_k(k, xr.shape[0])
    n_req = len(requests)
    res = {
        "score": np.full(n_req, np.nan),
        "kx": np.full(n_req, -1, dtype=np.int64),
        "ky": np.full(n_req, -1, dtype=np.int64),
        "n": np.zeros(n_req, dtype=np.int64),
    }
    if null:
        res["null"] = np.full(n_req, np.nan)
    keys = [
        ((req.x_key, xr.tobytes()), (req.y_key, yr.tobytes()))
        for req, (xr, yr) in zip(requests, prep.rows)
    ]
    groups = _components(keys) if measure in ("svcca", "pwcca") else [
        list(range(j, min(j + 8, n_req))) for j in range(0, n_req, 8)
    ]
    scorer = _Scorer(prep, requests, measure, keep, null, seed, int(k))
    workers = max(1, min(n_jobs or os.cpu_count() or 1, len(groups) or 1))
    # one BLAS thread per worker: the matrices are small, so threads belong to the pool
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        for rows_out in pool.map(scorer, groups):
            for i, score, kx, ky, m, nul in rows_out:
                res["score"][i], res["kx"][i], res["ky"][i], res["n"][i] = score, kx, ky, m
                if null:
                    res["null"][i] = nul
            if progress is not None:
                progress(len(rows_out))
    return res


@lru_cache(maxsize=256)
def _baseline(n: int, dx: int, dy: int, measure: str, keep: float, seed: int, repeats: int) -> float:
    rng = np.random.default_rng([seed, n, dx, dy])
    sets, requests = {}, []
    rows = np.arange(n)
    for r in range(repeats):
        sets[("x", r)] = rng.standard_normal((n, dx))
        sets[("y", r)] = rng.standard_normal((n, dy))
        requests.append(PairRequest(("x", r), rows, ("y", r), rows))
    return float(score_pairs(sets, requests, measure=measure, keep=keep, null=False, n_jobs=1)[
        "score"].mean())


def random_baseline(
    n: int, dx: int, dy: int, *, measure: str = "svcca", keep: float = 0.9, seed: int = 0,
    repeats: int = 3,
) -> float:
    """Mean score of independent Gaussian sets of shapes (n, dx), (n, dy); cached per shape.

    This is the chance level of the measure at this size (SVCCA of pure noise at n=300, d=1024
    is ~0.81), to print beside every observed score.
    """
    _check_measure(measure)
    keep = check_keep(keep)
    for name, v in (("n", n), ("dx", dx), ("dy", dy), ("repeats", repeats)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise AnalysisInputError(f"{name}={v!r} must be a positive integer; pass a count.")
    if n < _min_rows(measure, 10):
        raise AnalysisInputError(
            f"n={n} rows is too few for a {measure} baseline; pass at least {_min_rows(measure, 10)}."
        )
    return _baseline(int(n), int(dx), int(dy), measure, keep, int(seed), int(repeats))


def bootstrap_ci(
    sets: dict[Hashable, np.ndarray],
    request: PairRequest,
    *,
    measure: str = "svcca",
    keep: float = 0.9,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    k: int = 10,
) -> tuple[float, float]:
    """Percentile bootstrap interval of one score, resampling paired rows with replacement.

    Each resample draws m row positions with replacement and applies them to both sides, so the
    pairing is kept; repeated rows lower the subset's rank, which the Gram route handles exactly.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise AnalysisInputError(f"n_boot={n_boot!r} must be an integer >= 2; pass e.g. 200.")
    if not (0.0 < float(level) < 1.0):
        raise AnalysisInputError(f"level={level!r} must lie in (0, 1); pass e.g. 0.95.")
    xr = np.asarray(request.x_rows)
    yr = np.asarray(request.y_rows)
    if xr.shape != yr.shape or xr.ndim != 1:
        raise AnalysisInputError(
            "request.x_rows and request.y_rows must be 1-D and of equal length; pair the rows."
        )
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, xr.shape[0], size=(int(n_boot), xr.shape[0]))
    boots = [PairRequest(request.x_key, xr[d], request.y_key, yr[d]) for d in draws]
    scores = score_pairs(sets, boots, measure=measure, keep=keep, null=False, k=k)["score"]
    alpha = (1.0 - float(level)) / 2.0
    low, high = np.quantile(scores, [alpha, 1.0 - alpha])
    return float(low), float(high)
