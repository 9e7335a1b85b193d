"""Confidence intervals for similarity scores that mean what they say (split-sample intervals).

What the interval is for. A score T_n (SVCCA, PWCCA, CKA, kNN, ...) of n paired sentences is a
biased, sample-size-dependent statistic: SVCCA of pure noise is ~0.81 at n = 300, d = 1024, and the
same two populations score lower as n grows. There is no "true SVCCA" that every n estimates, so
the interval targets the one quantity that is defined at the n the user chose:

    theta_n = E[T_n], the score's mean over draws of n sentences from the same population.

A 95% interval covers theta_n in 95% of draws. The interval is centred on the score itself
(T_n is unbiased for theta_n by definition), so it always contains the score, and its half-width is
z * SD(T_n), the score's sampling spread at n.

Why the naive row bootstrap fails. Resampling n rows with replacement keeps ~63% distinct
sentences and repeats the rest: a repeated row adds no new direction, so the resampled set has a
lower effective rank, SVCCA's 90%-variance reduction keeps different directions, and the
resampled scores are centred far from theta_n (inflated for SVCCA; on the study's grid 39 of 160
per-language bootstrap intervals lay entirely above their own score). A percentile interval of
such resamples covers theta_n ~0% of the time in simulation. Plain m-out-of-n subsampling has the
same problem in another form: T_m is centred on theta_m != theta_n.

The method: random half-sample replication (McCarthy 1969), centred on the score. Rows are
never repeated, and subsamples only measure spread, never the centre:

1. each round draws one random permutation of the n paired rows and cuts it into two disjoint
   halves H1, H2 of h = n // 2 rows (an odd row is left out of that round);
2. disjoint subsets of one draw are independent draws of their size from the population, so
   (T_H1 - T_H2)^2 / 2 is an unbiased estimate of Var(T_h) for ANY statistic, biased or not, and
   the mean over rounds lowers its noise (V_h);
3. Var(T_n) = V_h * h / n: the 1/n rate of a statistic with a linear part. For U-statistics
   n Var(T_n) never increases with n (Hoeffding 1948), so where the rate is faster (degenerate,
   noise-fitting components) the interval is conservative, never too narrow. Estimating the rate
   from quarters as well was tried and rejected: the estimate is too noisy at the study's sizes
   and its intervals under-covered (80-92% in simulation);
4. the interval is T_n -/+ z_{(1+level)/2} * sqrt(Var(T_n)).

Where it over-covers: when most canonical correlations are forced to 1 (kx + ky > n - 1, the
`forced` column), SVCCA's spread collapses much faster than 1/n and the interval is too wide
(the benchmark shows the settings). There the score says little anyway; read `forced` first.

Every subsample is an ordinary `PairRequest` scored by the batched engine (`batched.score_pairs`)
through the `Measure` protocol (prepare once per set, restrict once per subset, score), so the
interval applies to every registered measure and runs on the torch backend where the measure has
one. One round costs two half-size scores: for SVCCA at n = 200, d = 1024 about 2/3 of one
with-replacement resample (the eigendecompositions are 1/8 the size; the rest is fixed costs).

Coverage is checked by simulation on planted models (X = Z A + noise, Y = Z B + noise):
tests/test_intervals.py at small sizes, benchmarks/bench_interval_coverage.py over the full grid
beside the old row bootstrap (`batched.bootstrap_ci`, kept as the baseline).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from statistics import NormalDist

import numpy as np

from actstore.analyses.validation import check_count, check_open_fraction
from actstore.errors import AnalysisInputError

from .batched import score_pairs
from .measure import Measure, PairRequest
from .registry import get_measure

__all__ = ["split_intervals", "split_plan", "METHOD"]

#: the method's name, recorded in docs and benchmark output
METHOD = "random half-sample replication (disjoint halves, 1/n rate), centred on the score"
_CHUNK = 8192  # half-sample pairs per engine call
_SALT = 0x5EED  # keeps the split draws independent of the null's permutations for the same seed


def split_plan(m: int, rounds: int, seed: int, index: int) -> np.ndarray:
    """Row positions (rounds, 2, m // 2): each round's two disjoint halves of a permutation.

    Seeded by (seed, request index), so intervals do not depend on threads, backend or how the
    engine batches the halves.
    """
    h = m // 2
    rng = np.random.default_rng([seed, index, _SALT])
    perms = np.argsort(rng.random((rounds, m)), axis=1)[:, : 2 * h]
    return np.sort(perms.reshape(rounds, 2, h), axis=2)


def half_sample_sd(halves: np.ndarray, m: int) -> float:
    """SD(T_m) from the half-sample scores (rounds, 2): sqrt(mean((T1 - T2)^2) / 2 * h / m).

    Rounds with an undefined half (a NaN score, e.g. degenerate PWCCA) are left out; none left: NaN.
    """
    diff = halves[:, 0] - halves[:, 1]
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean(diff**2) / 2.0 * (m // 2) / m))


def split_intervals(
    sets: dict[Hashable, np.ndarray],
    requests: Sequence[PairRequest],
    scores: np.ndarray,
    *,
    measure: str | type[Measure] | Measure = "svcca",
    keep: float = 0.9,
    k: int = 10,
    rounds: int = 100,
    seed: int = 0,
    level: float = 0.95,
    backend: str = "numpy",
    device: str | None = None,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Intervals (low, high), aligned with `requests`, for theta_n = E[score at n sentences].

    `scores` are the requests' full-sample scores (from `score_pairs`, unchanged here): each
    interval is centred on its score. `rounds` random half-splits per request (see the module
    docstring); all halves of all requests are scored in one batched `score_pairs` call. A
    request whose halves are below the measure's minimum rows gets NaN bounds.
    """
    meas = get_measure(measure, keep=keep, k=k)
    rounds = check_count(rounds, "rounds", min_val=2, example="100")
    level = check_open_fraction(level, "level")
    scores = np.asarray(scores, dtype=np.float64)
    requests = list(requests)
    if scores.shape != (len(requests),):
        raise AnalysisInputError(
            f"scores has shape {scores.shape} but there are {len(requests)} requests; pass one "
            "score per request (score_pairs(...)['score'])."
        )
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    halves: list[PairRequest] = []
    starts = np.full(len(requests), -1)
    for i, req in enumerate(requests):
        xr, yr = np.asarray(req.x_rows), np.asarray(req.y_rows)
        if xr.ndim != 1 or xr.shape != yr.shape:
            raise AnalysisInputError(
                f"requests[{i}] rows must be 1-D and of equal length on both sides; pair the rows."
            )
        if xr.shape[0] // 2 < meas.min_rows():
            continue  # too few rows to split: the bound stays NaN
        starts[i] = len(halves)
        for pair in split_plan(xr.shape[0], rounds, seed, i):
            halves.extend(PairRequest(req.x_key, xr[rows], req.y_key, yr[rows]) for rows in pair)
    half_scores = np.empty(len(halves))
    for j in range(0, len(halves), _CHUNK):  # bounded memory (the torch path keeps each batch's bases)
        half_scores[j : j + _CHUNK] = score_pairs(sets, halves[j : j + _CHUNK], measure=meas, null=False,
                                                  backend=backend, device=device, n_jobs=n_jobs)["score"]
    low = np.full(len(requests), np.nan)
    high = np.full(len(requests), np.nan)
    for i, start in enumerate(starts):
        if start >= 0:
            block = half_scores[start : start + 2 * rounds].reshape(rounds, 2)
            sd = half_sample_sd(block, np.asarray(requests[i].x_rows).shape[0])
            low[i], high[i] = scores[i] - z * sd, scores[i] + z * sd
    return low, high
