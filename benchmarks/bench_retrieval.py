"""Exact top-k cosine search: `topk_cosine` against what a user would write, in one run.

Baselines on the same data and queries:
- naive: normalise, full `q @ c.T`, `np.argsort` of every row (memory q x N x 12 bytes, so it
  runs only where that fits under --naive-max-gb);
- sklearn: `NearestNeighbors(metric="cosine", algorithm="brute").kneighbors`.

Each result is checked against the naive/sklearn neighbours (same index sets up to ties).
Run under `flock /tmp/actstore-bench.lock` on a shared machine:

    flock /tmp/actstore-bench.lock .venv/bin/python benchmarks/bench_retrieval.py
    ... --corpus 20000 --queries 500  # smaller
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import sklearn
import torch
from sklearn.neighbors import NearestNeighbors

from actstore.analyses.retrieval import topk_cosine


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, python {platform.python_version()}, "
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"sklearn {sklearn.__version__}"
    )


def _timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _naive(q: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    cn = c / np.linalg.norm(c, axis=1, keepdims=True)
    return np.argsort(-(qn @ cn.T), axis=1)[:, :k]


def _sklearn(q: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute", n_jobs=-1).fit(c)
    return nn.kneighbors(q, return_distance=False)


def _agree(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows whose top-k index sets are equal (float rounding may swap near-ties)."""
    return float(np.mean([set(x) == set(y) for x, y in zip(a.tolist(), b.tolist())]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--queries", type=int, nargs="+", default=[1_000, 10_000])
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--naive-max-gb", type=float, default=2.0)
    p.add_argument("--skip-sklearn-above", type=int, default=1_000,
                   help="run sklearn only for query counts up to this (it is slow)")
    args = p.parse_args()

    print(_machine())
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((args.corpus, args.dim), dtype=np.float32)
    for nq in args.queries:
        q = corpus[rng.choice(args.corpus, nq, replace=False)] + 0.5 * rng.standard_normal(
            (nq, args.dim), dtype=np.float32
        )
        gflop = 2 * nq * args.corpus * args.dim / 1e9
        t_ours, (idx, _) = _timed(lambda: topk_cosine(q, corpus, args.k), args.repeats)
        print(f"\nqueries={nq} corpus={args.corpus}x{args.dim} k={args.k} ({gflop:.0f} GFLOP)")
        print(f"  topk_cosine  {t_ours:8.3f} s  ({gflop / t_ours:.0f} GFLOP/s)")
        if nq * args.corpus * 12 / 2**30 <= args.naive_max_gb:
            t_naive, ref = _timed(lambda: _naive(q, corpus, args.k), 1)
            print(f"  naive        {t_naive:8.3f} s  x{t_naive / t_ours:.1f} slower, "
                  f"same neighbours in {_agree(idx, ref):.4f} of rows")
        else:
            print(f"  naive        skipped (needs {nq * args.corpus * 12 / 2**30:.1f} GiB)")
        if nq <= args.skip_sklearn_above:
            t_sk, ref = _timed(lambda: _sklearn(q, corpus, args.k), 1)
            print(f"  sklearn      {t_sk:8.3f} s  x{t_sk / t_ours:.1f} slower, "
                  f"same neighbours in {_agree(idx, ref):.4f} of rows")
        else:
            print("  sklearn      skipped (--skip-sklearn-above)")


if __name__ == "__main__":
    main()
