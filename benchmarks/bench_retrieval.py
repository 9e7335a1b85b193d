"""Exact top-k cosine search: `topk_cosine` against what a user would write, in one run.

Baselines on the same data and queries:
- naive: normalise, full `q @ c.T`, `np.argsort` of every row (memory q x N x 12 bytes, so it
  runs only where that fits under --naive-max-gb);
- sklearn: `NearestNeighbors(metric="cosine", algorithm="brute").kneighbors`.

Each result is checked against the naive/sklearn neighbours (same index sets up to ties).
Run under `flock /tmp/actstore-bench.lock` on a shared machine:

    flock /tmp/actstore-bench.lock .venv/bin/python benchmarks/bench_retrieval.py
    ... --corpus 20000 --queries 500  # smaller
    ... --quick                        # the same, for `make bench`

The bf16 fast path runs where `actstore.analyses.bf16_probe` says bf16 matmuls work; the
all-float32 time (ACTSTORE_BF16=0) is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import sklearn
import torch
from sklearn.neighbors import NearestNeighbors

from _machine import add_run_options, machine, write_summary
from actstore.analyses.bf16_probe import bf16_matmul_works
from actstore.analyses.retrieval import topk_cosine


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
    p.add_argument("--quick", action="store_true", help="--corpus 20000 --queries 500")
    add_run_options(p)
    args = p.parse_args()
    if args.quick:
        args.corpus, args.queries = 20_000, [500]

    print(machine(f"numpy {np.__version__}", f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
                  f"sklearn {sklearn.__version__}", f"bf16 fast path {'on' if bf16_matmul_works() else 'off'}"))
    row = None
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
        os.environ["ACTSTORE_BF16"] = "0"
        try:
            t_f32, (idx32, _) = _timed(lambda: topk_cosine(q, corpus, args.k), args.repeats)
        finally:
            del os.environ["ACTSTORE_BF16"]
        same32 = _agree(idx, idx32)
        print(f"  all-float32  {t_f32:8.3f} s  (bf16 path off), same neighbours in {same32:.4f} of rows")
        notes = [f"{t_f32:.2f} s all-float32"]
        if nq * args.corpus * 12 / 2**30 <= args.naive_max_gb:
            t_naive, ref = _timed(lambda: _naive(q, corpus, args.k), 1)
            print(f"  naive        {t_naive:8.3f} s  x{t_naive / t_ours:.1f} slower, "
                  f"same neighbours in {_agree(idx, ref):.4f} of rows")
            notes.append(f"{t_naive / t_ours:.1f}x a naive matmul+argsort ({_agree(idx, ref):.4f} same)")
        else:
            print(f"  naive        skipped (needs {nq * args.corpus * 12 / 2**30:.1f} GiB)")
        if nq <= args.skip_sklearn_above:
            t_sk, ref = _timed(lambda: _sklearn(q, corpus, args.k), 1)
            print(f"  sklearn      {t_sk:8.3f} s  x{t_sk / t_ours:.1f} slower, "
                  f"same neighbours in {_agree(idx, ref):.4f} of rows")
            notes.append(f"{t_sk / t_ours:.1f}x sklearn brute force ({_agree(idx, ref):.4f} same)")
        else:
            print("  sklearn      skipped (--skip-sklearn-above)")
        if row is None:
            row = (f"exact top-{args.k} cosine over {args.corpus:,} x {args.dim}",
                   f"{nq:,} queries {t_ours:.2f} s (" + "; ".join(notes) + ")")
    write_summary(args.summary, __file__, *row)


if __name__ == "__main__":
    main()
