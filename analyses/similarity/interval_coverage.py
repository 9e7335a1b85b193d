"""Coverage of similarity intervals, checked by simulation on planted models.

An interval method is only as good as its coverage: the share of draws whose interval holds the
quantity it claims to. Here that quantity is theta_n = E[T_n], the score's mean over draws of n
sentences from one population (`intervals` module docstring). A planted model fixes the
population:

    Z ~ N(0, I_k) (n, k) shared latent,  X = Z A + s E_x,  Y = Z B + s E_y,

with fixed loadings A (k, d), B (k, d) of N(0, 1) entries and noise E of N(0, 1) entries scaled by
s = noise * sqrt(k) (so noise = 1 puts as much variance in the noise as in the signal per
coordinate). theta_n is estimated by the mean score over `truth_draws` fresh draws; then
`replicates` further draws each give one interval, and coverage is the share that holds theta_n.
The tests run this at small sizes, benchmarks/bench_interval_coverage.py over the full grid with
the old row bootstrap (`batched.bootstrap_ci`) beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batched import PairRequest, bootstrap_ci, score_pairs
from .intervals import split_intervals


@dataclass(frozen=True)
class Planted:
    """One population: n sentences per draw, width d, latent rank k, noise level."""

    n: int
    d: int
    k: int
    noise: float
    seed: int = 0

    def loadings(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.n, self.d, self.k, 1])
        return rng.standard_normal((self.k, self.d)), rng.standard_normal((self.k, self.d))

    def draws(self, count: int, stream: int) -> dict[tuple[str, int], np.ndarray]:
        """`count` independent (X, Y) draws of n rows as sets {("x", i): X_i, ("y", i): Y_i}."""
        a, b = self.loadings()
        rng = np.random.default_rng([self.seed, self.n, self.d, self.k, 2, stream])
        s = self.noise * np.sqrt(self.k)
        sets = {}
        for i in range(count):
            z = rng.standard_normal((self.n, self.k))
            sets[("x", i)] = z @ a + s * rng.standard_normal((self.n, self.d))
            sets[("y", i)] = z @ b + s * rng.standard_normal((self.n, self.d))
        return sets


@dataclass(frozen=True)
class Coverage:
    """One setting's result: theta_n, SD(T_n), the new intervals' coverage and width, the old's."""

    theta: float
    sd: float
    coverage: float
    half_width: float  # mean half-width of the new intervals
    replicates: int
    old_coverage: float = float("nan")
    old_replicates: int = 0
    old_above: float = float("nan")  # share of old intervals lying entirely above their score


def _requests(count: int, n: int) -> list[PairRequest]:
    rows = np.arange(n)
    return [PairRequest(("x", i), rows, ("y", i), rows) for i in range(count)]


def check_coverage(model: Planted, *, measure: str = "svcca", keep: float = 0.9,
                   truth_draws: int = 400, replicates: int = 200, rounds: int = 50,
                   level: float = 0.95, old_replicates: int = 0, old_resamples: int = 100,
                   n_jobs: int | None = None) -> Coverage:
    """Coverage of `split_intervals` (and, with old_replicates > 0, of the old row bootstrap)."""
    truth_sets = model.draws(truth_draws, stream=0)
    truth = score_pairs(truth_sets, _requests(truth_draws, model.n), measure=measure, keep=keep,
                        null=False, n_jobs=n_jobs)["score"]
    theta = float(truth.mean())
    sets = model.draws(replicates, stream=1)
    requests = _requests(replicates, model.n)
    scores = score_pairs(sets, requests, measure=measure, keep=keep, null=False, n_jobs=n_jobs)["score"]
    low, high = split_intervals(sets, requests, scores, measure=measure, keep=keep, rounds=rounds,
                                seed=model.seed, level=level, n_jobs=n_jobs)
    result = Coverage(theta=theta, sd=float(truth.std(ddof=1)),
                      coverage=float(np.mean((low <= theta) & (theta <= high))),
                      half_width=float(np.mean(high - low) / 2.0), replicates=replicates)
    old_replicates = min(old_replicates, replicates)  # the old method runs on the first draws
    if old_replicates:
        old = np.array([bootstrap_ci(sets, requests[i], measure=measure, keep=keep, n_boot=old_resamples,
                                     seed=i, level=level) for i in range(old_replicates)])
        result = Coverage(**{**result.__dict__, "old_replicates": old_replicates,
                             "old_coverage": float(np.mean((old[:, 0] <= theta) & (theta <= old[:, 1]))),
                             "old_above": float(np.mean(old[:, 0] > scores[:old_replicates]))})
    return result


def binomial_band(p: float, replicates: int, z: float = 3.29) -> tuple[float, float]:
    """Acceptance band for an observed coverage when the true one is p: p -/+ z binomial SDs.

    z = 3.29 is two-sided 99.9%: a correct method fails it once in a thousand seeds.
    """
    half = z * np.sqrt(p * (1.0 - p) / replicates)
    return max(0.0, p - half), min(1.0, p + half)
