"""Score many paired-subset comparisons of one extraction point fast (the study's grids).

The engine is measure-agnostic: it runs any `Measure` (see `measure`) by its protocol —
`prepare` each set once, `restrict` each distinct (set, row subset) once and share it, `score`
every pair and its shuffled-row null — and takes measures by registry name (`registry`).

The study's grid is ~28,000 SVCCA scores (plus a shuffled-row null each) over ~60 sets of one
point, each compared on row subsets (sentence-id intersections). Per pair, the reference
procedure does two m x d SVDs and a covariance CCA (~42 ms). The built-in SVCCA measure
(`svcca.SVCCA`, maths in `reduction`) maps the protocol onto these shortcuts:

1. each set is column-centred once (by its full-set mean, so the Gram route loses no precision
   to a large common offset) and its Gram matrix X X^T computed once;
2. each distinct (set, row subset) is reduced once from its Gram block (one (m-1)^2
   eigendecomposition in an explicit basis of 1-perp) and shared by every score that uses it;
3. the canonical correlations are the singular values of V_x^T V_y, or, when kx + ky is large,
   of the small complement problem V_x⊥^T V_y⊥ (CS-decomposition identity);
4. the null permutes the rows of the already reduced y basis: no new reduction.

For every measure, requests are grouped into connected components of shared subsets and the
components run on a thread pool (LAPACK releases the GIL; BLAS is pinned to one thread per
worker). With backend='torch', a measure that `supports_torch` scores the whole grid itself
(SVCCA: `batched_torch` stacks same-size Gram blocks and uses batched eigh on a GPU); the
others run the numpy path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from threadpoolctl import threadpool_limits

from actstore.analyses.devices import resolve_device
from actstore.analyses.validation import check_count, check_open_fraction, check_rows, check_set
from actstore.errors import AnalysisInputError

from .forced import centred_span, forced_correlations, row_classes
from .measure import Measure, PairRequest, as_score, null_permutation
from .registry import get_measure

__all__ = ["PairRequest", "score_pairs", "random_baseline", "bootstrap_ci"]

_MAX_COMPONENT = 64  # requests per task: split huge components so both cores stay busy


def _validate(sets: dict[Hashable, np.ndarray], requests: Sequence[PairRequest], need: int,
              name: str) -> tuple[dict[Hashable, np.ndarray], list[PairRequest]]:
    """Validated float64 sets (only those used) and requests with intp row arrays."""
    used: dict[Hashable, np.ndarray] = {}
    pairs: list[PairRequest] = []
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
        xr = check_rows(req.x_rows, used[req.x_key].shape[0], f"requests[{i}].x_rows")
        yr = check_rows(req.y_rows, used[req.y_key].shape[0], f"requests[{i}].y_rows")
        if xr.shape[0] != yr.shape[0]:
            raise AnalysisInputError(
                f"requests[{i}] pairs {xr.shape[0]} x rows with {yr.shape[0]} y rows; rows are "
                "paired sentences, so pass the same number on both sides."
            )
        if xr.shape[0] < need:
            raise AnalysisInputError(
                f"requests[{i}] has {xr.shape[0]} paired rows but {name} needs at least {need}; "
                "pass more sentences."
            )
        pairs.append(PairRequest(req.x_key, xr, req.y_key, yr))
    return used, pairs


def _components(keys: list[tuple[Hashable, Hashable]]) -> list[list[int]]:
    """Group request indices whose subsets are linked by shared use (connected components of the
    graph with one node per distinct (set, rows) subset and one edge per request), in order of
    each group's first request, splitting huge groups so every worker gets a share."""
    nodes: dict[Hashable, int] = {}
    for kx, ky in keys:
        nodes.setdefault(kx, len(nodes))
        nodes.setdefault(ky, len(nodes))
    if not keys:
        return []
    a = np.array([nodes[kx] for kx, _ in keys])
    b = np.array([nodes[ky] for _, ky in keys])
    graph = coo_matrix((np.ones(len(keys)), (a, b)), shape=(len(nodes), len(nodes)))
    label = connected_components(graph, directed=False)[1][a]
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(label.tolist()):
        groups.setdefault(g, []).append(i)
    out: list[list[int]] = []
    for members in groups.values():
        out.extend(members[j : j + _MAX_COMPONENT] for j in range(0, len(members), _MAX_COMPONENT))
    return out


def _forced(used: dict[Hashable, np.ndarray], pairs: list[PairRequest], kx: np.ndarray,
            ky: np.ndarray) -> np.ndarray:
    """Correlations forced to 1 per request, from the span of its centred rows (`forced`):
    repeated rows (identical vectors, or a row index used twice) lower it below n - 1."""
    labels = {key: row_classes(x) for key, x in used.items()}
    distinct = {key: int(lab.max(initial=-1)) + 1 == lab.shape[0] for key, lab in labels.items()}

    def span(p: PairRequest) -> int:
        m = p.x_rows.shape[0]
        for key, rows in ((p.x_key, p.x_rows), (p.y_key, p.y_rows)):
            # a set without repeated vectors, rows without a repeated index: span n - 1
            if distinct[key] and (m < 2 or np.all(rows[1:] > rows[:-1]) or np.unique(rows).size == m):
                return m - 1
        return centred_span(labels[p.x_key][p.x_rows], labels[p.y_key][p.y_rows])

    spans = np.array([span(p) for p in pairs], dtype=np.int64)
    return np.asarray(forced_correlations(kx, ky, spans), dtype=np.int64).reshape(len(pairs))


class _Scorer:
    """Runs one group of requests: restricts each distinct subset once, then scores the pairs."""

    def __init__(self, measure: Measure, prepared: dict, pairs: list[PairRequest], null: bool,
                 seed: int):
        self.measure, self.prepared, self.pairs = measure, prepared, pairs
        self.null, self.seed = null, seed

    def __call__(self, group: list[int]) -> list[tuple[int, float, int, int, int, float]]:
        cache: dict[tuple[Hashable, bytes], object] = {}

        def get(key: Hashable, rows: np.ndarray):
            ck = (key, rows.tobytes())
            if ck not in cache:
                try:
                    cache[ck] = self.measure.restrict(self.prepared[key], rows)
                except AnalysisInputError as exc:
                    raise AnalysisInputError(f"set {key!r} (selected rows): {exc}") from None
            return cache[ck]

        out = []
        for i in group:
            req = self.pairs[i]
            sx, sy = get(req.x_key, req.x_rows), get(req.y_key, req.y_rows)
            m = req.x_rows.shape[0]
            try:
                res = as_score(self.measure.score(sx, sy))
                nul = (as_score(self.measure.score(sx, sy, null_permutation(self.seed, i, m))).score
                       if self.null else np.nan)
            except AnalysisInputError as exc:
                raise AnalysisInputError(
                    f"comparing sets {req.x_key!r} and {req.y_key!r}: {exc}") from None
            out.append((i, res.score, res.kx, res.ky, m, nul))
        return out


def score_pairs(
    sets: dict[Hashable, np.ndarray],
    requests: Sequence[PairRequest],
    *,
    measure: str | type[Measure] | Measure = "svcca",
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

    measure: a registered name (`registry.measure_names()`) or a `Measure` class, built with
    `keep` and `k`, or a ready `Measure` instance (its own options win). Keys: score, kx, ky (kept directions; -1
    when the measure has none), n (paired rows), forced (canonical correlations that are 1 by
    construction, see `forced`; 0 for measures without kept directions), and null (the same measure with y's rows
    shuffled by a permutation seeded by (seed, request index)) when null=True. `progress(n)` is
    called with the number of requests just finished (an increment, e.g. `tqdm.update`).
    `n_jobs` threads (default: all cores) share the work on the numpy backend.
    backend='torch' runs measures that support it (svcca) on `device`; others use numpy.
    """
    return _score(sets, requests, measure=measure, keep=keep, null=null, seed=seed, k=k, backend=backend,
                  device=device, n_jobs=n_jobs, progress=progress, count_forced=True)


def _score(sets, requests, *, measure, keep, null, seed, k, backend, device, n_jobs, progress,
           count_forced: bool) -> dict[str, np.ndarray]:
    """`score_pairs`; without `count_forced` (bootstrap resamples: only scores are read) the
    forced counts are not computed."""
    meas = get_measure(measure, keep=keep, k=k)
    device = resolve_device(device, backend=backend, what="similarity")
    requests = list(requests)
    used, pairs = _validate(sets, requests, meas.min_rows(), meas.label)
    if backend == "torch" and meas.supports_torch:
        res = meas.score_grid_torch(used, pairs, null=null, seed=seed, device=device, progress=progress)
    else:
        res = _score_numpy(meas, used, pairs, null=null, seed=seed, n_jobs=n_jobs, progress=progress)
    if count_forced:
        res["forced"] = _forced(used, pairs, res["kx"], res["ky"])
    return res


def _score_numpy(meas: Measure, used: dict[Hashable, np.ndarray], pairs: list[PairRequest], *,
                 null: bool, seed: int, n_jobs: int | None,
                 progress: Callable[[int], object] | None) -> dict[str, np.ndarray]:
    """`score_pairs` on the numpy path: components of shared subsets on a thread pool."""
    prepared = {key: meas.prepare(x) for key, x in used.items()}
    n_req = len(pairs)
    res = {
        "score": np.full(n_req, np.nan),
        "kx": np.full(n_req, -1, dtype=np.int64),
        "ky": np.full(n_req, -1, dtype=np.int64),
        "n": np.zeros(n_req, dtype=np.int64),
    }
    if null:
        res["null"] = np.full(n_req, np.nan)
    keys = [((p.x_key, p.x_rows.tobytes()), (p.y_key, p.y_rows.tobytes())) for p in pairs]
    groups = _components(keys)
    scorer = _Scorer(meas, prepared, pairs, null, seed)
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
def _baseline(n: int, dx: int, dy: int, key: "_Key", seed: int, repeats: int) -> float:
    rng = np.random.default_rng([seed, n, dx, dy])
    sets, requests = {}, []
    rows = np.arange(n)
    for r in range(repeats):
        sets[("x", r)] = rng.standard_normal((n, dx))
        sets[("y", r)] = rng.standard_normal((n, dy))
        requests.append(PairRequest(("x", r), rows, ("y", r), rows))
    return float(score_pairs(sets, requests, measure=key.measure, null=False, n_jobs=1)["score"].mean())


class _Key:
    """A measure as a cache key: its class and options (instances are equal when those are)."""

    def __init__(self, measure: Measure):
        self.measure = measure
        self._id = (type(measure), measure.options)

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other._id == self._id


def random_baseline(
    n: int, dx: int, dy: int, *, measure: str | type[Measure] | Measure = "svcca", keep: float = 0.9, seed: int = 0,
    repeats: int = 3, k: int = 10,
) -> float:
    """Mean score of independent Gaussian sets of shapes (n, dx), (n, dy); cached per shape.

    This is the chance level of the measure at this size (SVCCA of pure noise at n=300, d=1024
    is ~0.81), to print beside every observed score.
    """
    meas = get_measure(measure, keep=keep, k=k)
    for name, v in (("n", n), ("dx", dx), ("dy", dy), ("repeats", repeats)):
        check_count(v, name)
    if n < meas.min_rows():
        raise AnalysisInputError(
            f"n={n} rows is too few for a {meas.label} baseline; pass at least {meas.min_rows()}."
        )
    key = _Key(meas)
    return _baseline(int(n), int(dx), int(dy), key, int(seed), int(repeats))


def bootstrap_ci(
    sets: dict[Hashable, np.ndarray],
    request: PairRequest,
    *,
    measure: str | type[Measure] | Measure = "svcca",
    keep: float = 0.9,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    k: int = 10,
) -> tuple[float, float]:
    """Percentile bootstrap interval of one score, resampling paired rows with replacement.

    Superseded for grids by `intervals.split_intervals`: repeated rows inflate biased measures
    like SVCCA, so these intervals miss the score's mean (kept as the benchmark's baseline).

    Each resample draws m row positions with replacement and applies them to both sides, so the
    pairing is kept; repeated rows lower the subset's rank, which the Gram route handles exactly.
    """
    meas = get_measure(measure, keep=keep, k=k)
    check_count(n_boot, "n_boot", min_val=2, example="200")
    level = check_open_fraction(level, "level")
    xr = np.asarray(request.x_rows)
    yr = np.asarray(request.y_rows)
    if xr.shape != yr.shape or xr.ndim != 1:
        raise AnalysisInputError(
            "request.x_rows and request.y_rows must be 1-D and of equal length; pair the rows."
        )
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, xr.shape[0], size=(int(n_boot), xr.shape[0]))
    boots = [PairRequest(request.x_key, xr[d], request.y_key, yr[d]) for d in draws]
    scores = _score(sets, boots, measure=meas, keep=keep, null=False, seed=0, k=k, backend="numpy",
                    device=None, n_jobs=None, progress=None, count_forced=False)["score"]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(scores, [alpha, 1.0 - alpha])
    return float(low), float(high)
