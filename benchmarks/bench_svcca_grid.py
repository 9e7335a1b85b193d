"""The study-scale SVCCA grid through the store: actstore vs the reference procedure.

Workload: synthetic vectors in a real store -- 30 languages x 2 modalities x 16 points x ~350
sentences per language (per-language id sets drawn from a shared pool so that pair
intersections are ~200), 1024 dims, each vector a random linear map of a per-sentence latent
(rank 64) plus noise, so scores are neither 0 nor 1. The grid: cross-modal (30 per point) plus
cross-lingual speech-speech and text-text (lower triangles, 435 each) and speech-text (900) per
point: 16 x (30 + 435 + 435 + 900) = 28,800 SVCCA scores, each with a shuffled-row null and
random baselines -- exactly what `actstore analyze svcca` computes (reads, alignment by id,
recording choice included).

Baseline, same run: the reference procedure a researcher runs today (per pair: centre,
SVD-reduce each side to 90% variance, CCA from covariance matrices with epsilon 1e-10, as
google/svcca's `cca_core.get_cca_similarity`), timed on a sample of pairs and extrapolated;
the sample's scores are compared with actstore's (max |diff|).

Run: `python benchmarks/bench_svcca_grid.py [--quick] [--backend torch --device cuda]`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # _store_data: synthetic rows
from _machine import add_run_options, machine, write_summary  # noqa: E402
from bench_svcca_math import reference_svcca  # noqa: E402  (the reference, written from the definition)

from actstore.store import Store  # noqa: E402
from _store_data import activation_rows  # noqa: E402  (tests/: synthetic rows, real store)
from actstore.analyses.aligned import choose_depths, load_depth_sets, select_recordings  # noqa: E402
from actstore.analyses.grids import GridOptions, similarity_grid  # noqa: E402

MODEL = "synthetic-study"




def build_store(path: Path, n_langs: int, n_points: int, per_lang: int, pool: int, dim: int, rank: int) -> Store:
    store = Store.open(path)
    if MODEL in store.models():
        return store
    rng = np.random.default_rng(0)
    langs = [f"l{i:02d}" for i in range(n_langs)]
    latent = rng.standard_normal((pool + 1, rank)).astype(np.float32)
    store.register_points(MODEL, [
        {"point": f"{m}.L{i}", "modality": m, "layer": i, "width": dim, "vector_dtype": "float32"}
        for m in ("speech", "text") for i in range(1, n_points + 1)])
    for lang in langs:
        ids = np.sort(rng.choice(np.arange(1, pool + 1), size=per_lang, replace=False))
        for modality in ("speech", "text"):
            tables = []
            for i in range(1, n_points + 1):
                mix = rng.standard_normal((rank, dim)).astype(np.float32)
                x = latent[ids] @ mix + 2.0 * rng.standard_normal((ids.size, dim), dtype=np.float32)
                tables.append(activation_rows(MODEL, f"{modality}.L{i}", modality, lang, ids, x, layer=i))
            import pyarrow as pa

            store.write_activations(MODEL, dim, pa.concat_tables(tables), replace=False)
    store.finalize_model(MODEL)
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 languages, 4 points")
    ap.add_argument("--sample", type=int, default=30, help="pairs timed with the reference")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--device", default=None)
    ap.add_argument("--dir", default=None, help="keep the synthetic store here (reused across runs)")
    add_run_options(ap)
    args = ap.parse_args()
    n_langs, n_points = (8, 4) if args.quick else (30, 16)
    per_lang, pool, dim, rank = 350, 612, 1024, 64
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="actstore-svcca-bench-"))
    t0 = time.perf_counter()
    store = build_store(work / "store.lance", n_langs, n_points, per_lang, pool, dim, rank)
    build_s = time.perf_counter() - t0
    print(f"machine: {machine(f'numpy {np.__version__}')}")
    print(f"data: {n_langs} languages x 2 modalities x {n_points} points x {per_lang} sentences, {dim} dims, "
          f"synthetic (rank-{rank} latent + noise) in a real store ({build_s:.0f} s to build)")

    options = GridOptions(backend=args.backend, device=args.device)
    t0 = time.perf_counter()
    grid = similarity_grid(store, MODEL, "all", options=options)  # = actstore analyze svcca --kind all
    total = time.perf_counter() - t0
    xm = grid.filter(pl.col("kind") == "cross-modal")
    xl = grid.filter(pl.col("kind") != "cross-modal")
    n_scores = grid.height
    print(f"actstore grid ({args.backend}, --kind all): {n_scores:,} scores (cross-modal {xm.height}, "
          f"cross-lingual {xl.height}; each with a shuffled null; baselines) in {total:.1f} s = "
          f"{1e3 * total / n_scores:.2f} ms per score, reads and alignment included")
    print("  n per comparison: cross-modal", sorted(set(xm["n"].to_list())), "cross-lingual",
          sorted(set(xl["n"].to_list())))

    # reference on a sample of the same comparisons, rows taken by sentence id as the grid does
    rng = np.random.default_rng(1)
    sample = grid.sample(n=min(args.sample, n_scores), seed=1)
    depths = {d.name: d for d in choose_depths(store, MODEL, None, need=("speech", "text"))}
    selection = select_recordings(store, MODEL, {m: depths["L1"].points[m] for m in ("speech", "text")}, None)
    cache = {}
    ref_times, diffs = [], []
    for row in sample.iter_rows(named=True):
        d = row["depth"]
        if d not in cache:
            cache[d] = load_depth_sets(store, MODEL, depths[d], selection, ("speech", "text"))
        sets = cache[d]
        xkey, ykey = (row["lang_a"], row["modality_a"]), (row["lang_b"], row["modality_b"])
        common = np.intersect1d(sets.ids[xkey], sets.ids[ykey])[: row["n"]]
        x = sets.vectors[xkey][sets.rows_for(xkey, common)].astype(np.float64)
        y = sets.vectors[ykey][sets.rows_for(ykey, common)].astype(np.float64)
        t = time.perf_counter()
        ref = reference_svcca(x, y, keep=0.9)
        ref_times.append(time.perf_counter() - t)
        diffs.append(abs(ref - row["score"]))
    per_ref = float(np.mean(ref_times))
    print(f"reference (per pair SVD + covariance CCA, eps 1e-10): {1e3 * per_ref:.1f} ms per score on "
          f"{len(ref_times)} sampled pairs -> {per_ref * n_scores / 60:.1f} min for the grid (extrapolated)")
    print(f"speed-up per score: {per_ref * n_scores / total:.1f}x; max |actstore - reference| on the sample: "
          f"{max(diffs):.2e} (goal <= 1e-6)")
    print(f"goal: whole grid < 60 s on 2 CPU cores ({'met' if total < 60 else 'NOT met'}: {total:.1f} s)")
    write_summary(args.summary, __file__,
                  f"grid from a real store: {n_langs} languages, {n_points} points, {n_scores:,} SVCCA scores + nulls",
                  f"{total:.1f} s ({1e3 * total / n_scores:.2f} ms per score) vs the google/svcca-style reference "
                  f"{1e3 * per_ref:.1f} ms per score ({per_ref * n_scores / 60:.1f} min): "
                  f"{per_ref * n_scores / total:.1f}x, max diff {max(diffs):.1e}")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
