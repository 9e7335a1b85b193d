"""t-SNE: `tsne_embed` (openTSNE, configured to sklearn's schedule) against sklearn's defaults.

Synthetic clustered data like a layer of pooled vectors: --clusters Gaussian clusters
("languages") in --dim dimensions, --n points in all. Both runs use the same data, perplexity
30, 1000 iterations, PCA init and all cores; the script prints wall times, the speed ratio, the
final KL divergence of each, and a 2-D 10-NN cluster-label accuracy as a quality check.
Run under the shared lock:

    flock /tmp/actstore-bench.lock .venv/bin/python benchmarks/bench_tsne.py          # 20,000
    flock /tmp/actstore-bench.lock .venv/bin/python benchmarks/bench_tsne.py --n 3000
    ... --quick   # 2,000 x 256, 10 clusters, for `make bench`
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import openTSNE
import sklearn
from sklearn.neighbors import KNeighborsClassifier

from _machine import add_run_options, machine, write_summary
from actstore.analyses.tsne import tsne_embed


def _data(n: int, dim: int, clusters: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) * 0.35
    labels = rng.integers(0, clusters, size=n)
    x = centres[labels] + rng.standard_normal((n, dim), dtype=np.float32) * 1.0
    return x, labels


def _knn_accuracy(coords: np.ndarray, labels: np.ndarray) -> float:
    clf = KNeighborsClassifier(n_neighbors=11).fit(coords, labels)
    neigh = clf.kneighbors(coords, return_distance=False)[:, 1:]
    pred = np.array([np.bincount(v).argmax() for v in labels[neigh]])
    return float(np.mean(pred == labels))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--clusters", type=int, default=30)
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument("--quick", action="store_true", help="--n 2000 --dim 256 --clusters 10")
    add_run_options(p)
    args = p.parse_args()
    if args.quick:
        args.n, args.dim, args.clusters = 2_000, 256, 10

    print(machine(f"openTSNE {openTSNE.__version__}", f"sklearn {sklearn.__version__}", f"numpy {np.__version__}"))
    x, labels = _data(args.n, args.dim, args.clusters)
    print(f"data: {args.n} x {args.dim}, {args.clusters} clusters, max_iter={args.max_iter}")

    runs = [("auto", "ours")] + ([] if args.skip_sklearn else [("sklearn", "sklearn")])
    results = {}
    for method, name in runs:
        t0 = time.perf_counter()
        r = tsne_embed(x, max_iter=args.max_iter, method=method)
        dt = time.perf_counter() - t0
        results[name] = (dt, r)
        print(
            f"  {name:8s} {r.method:20s} {dt:8.1f} s   KL {r.kl_divergence:.4f}   "
            f"10-NN label accuracy {_knn_accuracy(r.coords, labels):.3f}"
        )
    if "sklearn" in results:
        (t_o, r_o), (t_s, r_s) = results["ours"], results["sklearn"]
        print(
            f"  speed-up x{t_s / t_o:.1f}; KL ours/sklearn = {r_o.kl_divergence / r_s.kl_divergence:.4f} "
            f"({100 * (r_o.kl_divergence / r_s.kl_divergence - 1):+.2f} %)"
        )
    t_o, r_o = results["ours"]
    result = f"openTSNE (sklearn's schedule) {t_o:.1f} s, KL {r_o.kl_divergence:.3f}"
    if "sklearn" in results:
        t_s, r_s = results["sklearn"]
        result += (f" vs sklearn {t_s:.1f} s, KL {r_s.kl_divergence:.3f}: {t_s / t_o:.1f}x "
                   f"({100 * (r_o.kl_divergence / r_s.kl_divergence - 1):+.1f}% KL)")
    write_summary(args.summary, __file__, f"{args.n:,} x {args.dim}, {args.clusters} clusters", result)


if __name__ == "__main__":
    main()
