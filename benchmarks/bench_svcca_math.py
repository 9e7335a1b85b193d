"""Benchmark: the study-scale SVCCA grid, batched engine vs the per-pair reference procedure.

Synthetic, in memory: L languages x 2 modalities x P points, d dims. Each language holds ~350
sentence ids drawn from a shared pool sized so pairwise intersections are ~200; every
cross-lingual pair is cut to the smallest intersection, cross-modal pairs use the first N ids
(N = smallest language). Vectors = a shared per-sentence latent through a per-(language,
modality, point) random map plus noise, so scores are in the study's range.

Prints per-score times, the speed-up, the max |diff| on a sample of pairs scored by the
reference (google/svcca style: per-pair SVD reduction, covariance CCA, epsilon 1e-10), and the
machine. Never asserts on time. Run under `flock /tmp/actstore-bench.lock` on shared machines.

    PYTHONPATH=. python benchmarks/bench_svcca_math.py [--quick] [--backend torch --device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from _machine import add_run_options, machine, write_summary
from actstore.analyses.similarity.batched import PairRequest, score_pairs


def reference_svcca(x: np.ndarray, y: np.ndarray, keep: float = 0.9, eps: float = 1e-10) -> float:
    """google/svcca procedure: SVD-reduce each side, then CCA from covariance matrices."""

    def reduce(a):
        a = a - a.mean(axis=0)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        cum = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(cum, keep - 1e-10)) + 1
        return u[:, :k] * s[:k], k

    xr, kx = reduce(x)
    yr, ky = reduce(y)
    n = x.shape[0]
    sxx, syy, sxy = xr.T @ xr / (n - 1), yr.T @ yr / (n - 1), xr.T @ yr / (n - 1)
    xm, ym = np.abs(sxx).max(), np.abs(syy).max()
    sxx = sxx / xm + eps * np.eye(kx)
    syy = syy / ym + eps * np.eye(ky)
    sxy = sxy / np.sqrt(xm * ym)

    def inv_sqrt(a):
        w, v = np.linalg.eigh(a)
        return (v / np.sqrt(w)) @ v.T

    rho = np.linalg.svd(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy), compute_uv=False)
    return float(rho[: min(kx, ky)].mean())


def make_ids(n_langs: int, per_lang: int, target_inter: int, rng) -> list[np.ndarray]:
    pool = int(round(per_lang**2 / target_inter))
    return [np.sort(rng.choice(pool, size=per_lang, replace=False)) for _ in range(n_langs)]


def make_point(ids, d: int, rank: int, rng) -> dict[tuple[int, str], np.ndarray]:
    pool = int(max(i.max() for i in ids)) + 1
    latent = rng.standard_normal((pool, rank)) * (1.0 / np.sqrt(1.0 + np.arange(rank)))
    sets = {}
    for lang, lid in enumerate(ids):
        for mod in ("speech", "text"):
            a = rng.standard_normal((rank, d))
            x = latent[lid] @ a + 0.7 * rng.standard_normal((lid.size, d))
            sets[(lang, mod)] = x + 3.0 * rng.standard_normal(d)  # a common offset, as real activations have
    return sets


def make_requests(ids: list[np.ndarray]) -> list[PairRequest]:
    n_langs = len(ids)
    inter = {}
    for i in range(n_langs):
        for j in range(i):
            inter[i, j] = np.intersect1d(ids[i], ids[j])
    cut = min(v.size for v in inter.values())
    n_cross = min(v.size for v in ids)
    reqs = []
    for i in range(n_langs):  # cross-modal: first N ids
        r = np.arange(n_cross)
        reqs.append(PairRequest((i, "speech"), r, (i, "text"), r))
    for i in range(n_langs):
        for j in range(n_langs):
            common = ids[i][:cut] if i == j else inter[max(i, j), min(i, j)][:cut]
            ri, rj = np.searchsorted(ids[i], common), np.searchsorted(ids[j], common)
            if j < i:  # lower triangle: speech-speech and text-text
                reqs.append(PairRequest((i, "speech"), ri, (j, "speech"), rj))
                reqs.append(PairRequest((i, "text"), ri, (j, "text"), rj))
            reqs.append(PairRequest((i, "speech"), ri, (j, "text"), rj))  # full speech-text
    return reqs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 languages, 2 points, 256 dims")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--device", default=None)
    ap.add_argument("--ref-pairs", type=int, default=30)
    add_run_options(ap)
    args = ap.parse_args()
    langs, points, d, per_lang = (8, 2, 256, 350) if args.quick else (30, 16, 1024, 350)
    rng = np.random.default_rng(0)
    ids = make_ids(langs, per_lang, 200, rng)
    requests = make_requests(ids)
    print(f"machine: {machine(f'numpy {np.__version__}')}")
    print(f"grid: {langs} langs x 2 modalities x {points} points, d={d}; {len(requests)} "
          f"scores per point, {len(requests) * points} in all, each with a shuffled-row null; "
          f"cross-lingual m={requests[-1].x_rows.size}, cross-modal m={requests[0].x_rows.size}")

    total_fast, total_gen, n_scores = 0.0, 0.0, 0
    max_diff, ref_time, n_ref = 0.0, 0.0, 0
    sample = np.random.default_rng(1).choice(len(requests), size=args.ref_pairs, replace=False)
    per_point_ref = -(-args.ref_pairs // points)
    for p in range(points):
        t0 = time.perf_counter()
        sets = make_point(ids, d, 64, rng)
        total_gen += time.perf_counter() - t0
        t0 = time.perf_counter()
        res = score_pairs(sets, requests, measure="svcca", keep=0.9, null=True, seed=p,
                          backend=args.backend, device=args.device)
        total_fast += time.perf_counter() - t0
        n_scores += len(requests)
        for i in sample[p * per_point_ref : (p + 1) * per_point_ref]:
            req = requests[i]
            x, y = sets[req.x_key][req.x_rows], sets[req.y_key][req.y_rows]
            with threadpool_limits(limits=1, user_api="blas"):  # single-thread, as measured
                t0 = time.perf_counter()
                ref = reference_svcca(x, y)
                ref_time += time.perf_counter() - t0
            n_ref += 1
            max_diff = max(max_diff, abs(ref - res["score"][i]))
        print(f"  point {p:2d}: {len(requests)} scores, mean score {res['score'].mean():.4f} "
              f"(null {res['null'].mean():.4f}, kx~{res['kx'].mean():.0f}), "
              f"cumulative {total_fast:.1f} s")
    per_fast = total_fast / n_scores * 1e3
    per_ref = ref_time / max(n_ref, 1) * 1e3
    print(f"reference: {per_ref:.2f} ms per score (score only, {n_ref} sampled pairs); "
          f"projected grid {per_ref * 2 * n_scores / 1e3:.0f} s with nulls")
    print(f"score_pairs ({args.backend}): {total_fast:.2f} s for {n_scores} scores + nulls = "
          f"{per_fast:.3f} ms per score+null")
    print(f"speed-up vs reference (score only): {per_ref / per_fast:.1f}x; "
          f"max |diff| on sampled pairs: {max_diff:.2e}; data generation {total_gen:.1f} s (untimed)")
    write_summary(args.summary, __file__,
                  f"the grid in memory: {langs} languages, {points} points, d={d}, {n_scores:,} scores + nulls",
                  f"{per_fast:.3f} ms per score+null vs reference {per_ref:.2f} ms per score: "
                  f"{per_ref / per_fast:.1f}x, max diff {max_diff:.1e}")


if __name__ == "__main__":
    main()
