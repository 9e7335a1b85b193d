"""Benchmark: coverage of the similarity intervals over a grid of sizes, old method beside it.

Data: planted models (`actstore.analyses.similarity.interval_coverage.Planted`): a shared latent
Z (n, k), X = Z A + noise, Y = Z B + noise, over n sentences, widths d and noise levels. For each
setting theta_n = E[SVCCA at n] is the mean over `--truth` fresh draws; each of `--replicates`
further draws gives one interval, and coverage is the share holding theta_n.

New: random half-sample replication centred on the score (`similarity.intervals`, what
`--bootstrap N` computes now). Baseline, run in the same script on the same draws: the old
percentile row bootstrap with replacement (`batched.bootstrap_ci`, what `--bootstrap N`
computed before). Nominal 95%; the target band is 90-98%. Never asserts.

    PYTHONPATH=benchmarks python benchmarks/bench_interval_coverage.py [--quick] [--jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from _machine import add_run_options, machine, write_summary
from actstore.analyses.similarity.interval_coverage import Planted, binomial_band, check_coverage
from actstore.analyses.similarity.intervals import METHOD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2 x 2 x 2 grid, fewer replicates")
    parser.add_argument("--measure", default="svcca")
    parser.add_argument("--replicates", type=int, default=200, help="draws, one interval each")
    parser.add_argument("--rounds", type=int, default=40, help="split rounds per interval (--bootstrap N)")
    parser.add_argument("--truth", type=int, default=400, help="draws estimating theta_n")
    parser.add_argument("--old-replicates", type=int, default=40)
    parser.add_argument("--old-resamples", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1, help="threads (keep low on shared machines)")
    add_run_options(parser)
    args = parser.parse_args()
    sizes, widths, noises = ([50, 200], [32, 512], [0.5, 2.0]) if args.quick else (
        [50, 100, 200], [32, 128, 512], [0.5, 1.0, 2.0])
    if args.quick:
        args.replicates, args.rounds, args.old_replicates = min(args.replicates, 100), min(args.rounds, 20), 20
    print(f"machine: {machine('numpy ' + np.__version__)}")
    print(f"data: planted models X = Z A + s E, Y = Z B + s E, latent rank k = 4, s = noise * sqrt(k); "
          f"theta_n from {args.truth} draws; {args.replicates} intervals per setting "
          f"({args.rounds} split rounds each); measure {args.measure}, nominal 95%")
    print(f"new: {METHOD}")
    print(f"old (baseline): percentile row bootstrap with replacement, {args.old_resamples} resamples, "
          f"on the first {args.old_replicates} draws")
    band = binomial_band(0.95, args.replicates)
    print(f"a correct method's coverage lies in [{band[0]:.3f}, {band[1]:.3f}] (99.9% binomial band)\n")
    print(f"{'n':>4} {'d':>4} {'noise':>5} {'theta_n':>8} {'sd':>7} {'new cov':>8} {'width/2sd':>9} "
          f"{'old cov':>8} {'old above':>9} {'s':>5}")
    news, olds, t_all = [], [], time.perf_counter()
    for n, d, noise in itertools.product(sizes, widths, noises):
        t0 = time.perf_counter()
        r = check_coverage(Planted(n=n, d=d, k=4, noise=noise), measure=args.measure,
                           truth_draws=args.truth, replicates=args.replicates, rounds=args.rounds,
                           old_replicates=args.old_replicates, old_resamples=args.old_resamples,
                           n_jobs=args.jobs)
        news.append(r.coverage)
        olds.append(r.old_coverage)
        print(f"{n:>4} {d:>4} {noise:>5.1f} {r.theta:>8.4f} {r.sd:>7.4f} {r.coverage:>8.3f} "
              f"{r.half_width / (1.959964 * r.sd):>9.2f} {r.old_coverage:>8.3f} {r.old_above:>9.3f} "
              f"{time.perf_counter() - t0:>5.0f}", flush=True)
    inside = sum(0.90 <= c <= 0.98 for c in news)
    print(f"\nnew: coverage {min(news):.3f}-{max(news):.3f} (mean {np.mean(news):.3f}), {inside} of {len(news)} settings in 90-98%; "
          f"old: {min(olds):.3f}-{max(olds):.3f}; {time.perf_counter() - t_all:.0f} s")
    write_summary(args.summary, __file__, f"interval coverage, {len(news)} planted settings, nominal 95%",
                  f"new {min(news):.3f}-{max(news):.3f}, mean {np.mean(news):.3f} (old {min(olds):.3f}-{max(olds):.3f})")


if __name__ == "__main__":
    main()
