"""Slice read: one point, all languages, into numpy -- actstore vs a raw Lance scan vs Parquet.

Workload (synthetic vectors, real store): 30 languages x 2 modalities x 16 points x 200 sentences
(192,000 rows x 1024 float32 dims, ~790 MB), written the way ingest writes them: one commit per
(language, modality) job holding every point. The read: one point (e.g. speech.L12), every
language -> Polars metadata + (6000, 1024) float32 array.

Baselines measured in the same run:
- raw Lance: `LanceDataset.to_table(columns=..., filter="point = ...")` + the vector column to
  numpy: the floor actstore builds on (goal: actstore <= 2x this);
- Parquet: the same rows in one Parquet file in ingest order, read with Polars
  (`scan_parquet(...).filter(...).collect()`), the way a user would keep activations otherwise.

Run: `python benchmarks/bench_slice_read.py [--quick]`. Prints times and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from _machine import add_run_options, machine, write_summary
from actstore.store import Store, vectors_to_numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _store_data import activation_rows  # noqa: E402  (tests/: synthetic rows, real store)




def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 languages, 8 points, 100 sentences")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dir", default=None, help="Working directory (default: a temp dir, removed after)")
    add_run_options(ap)
    args = ap.parse_args()
    n_langs, n_points, n_ids, dim = (8, 8, 100, 1024) if args.quick else (30, 16, 200, 1024)
    work = Path(args.dir or tempfile.mkdtemp(prefix="actstore-bench-"))
    rng = np.random.default_rng(0)
    langs = [f"l{i:02d}" for i in range(n_langs)]
    points = {m: [f"{m}.L{i}" for i in range(1, n_points + 1)] for m in ("speech", "text")}
    store = Store.open(work / "store.lance")
    store.register_points("bench", [
        {"point": p, "modality": m, "layer": int(p.split("L")[1]), "width": dim, "vector_dtype": "float32"}
        for m, ps in points.items() for p in ps
    ])
    parquet_parts = []
    t0 = time.perf_counter()
    for lang in langs:
        for modality, ps in points.items():
            tables = [activation_rows("bench", p, modality, lang, range(n_ids),
                                      rng.standard_normal((n_ids, dim), dtype=np.float32),
                                      layer=int(p.split("L")[1])) for p in ps]
            job = pa.concat_tables(tables)
            store.write_activations("bench", dim, job, replace=False)
            parquet_parts.append(job)
    store.finalize_model("bench")
    write_s = time.perf_counter() - t0
    parquet_path = work / "ingest_order.parquet"
    pl.from_arrow(pa.concat_tables(parquet_parts)).write_parquet(parquet_path)
    del parquet_parts
    n_rows = n_langs * 2 * n_points * n_ids
    target = points["speech"][n_points * 3 // 4 - 1]
    table_name = store.points("bench")["table_name"][0]
    ds = store.dataset(table_name)
    meta_cols = ["lang", "sentence_id", "sample_id", "modality", "point"]

    def actstore_read():
        s = store.read("bench", points=target, columns=meta_cols)
        assert s.vectors.shape == (n_langs * n_ids, dim)

    def lance_raw():
        t = ds.to_table(columns=meta_cols + ["vector"], filter=f"point = '{target}'")
        x = vectors_to_numpy(t.column("vector"))
        assert x.shape == (n_langs * n_ids, dim)

    def parquet_read():
        df = pl.scan_parquet(parquet_path).filter(pl.col("point") == target).select(meta_cols + ["vector"]).collect()
        x = df["vector"].to_numpy()
        assert x.shape == (n_langs * n_ids, dim)

    for fn in (actstore_read, lance_raw, parquet_read):  # warm caches equally
        fn()
    a_best, a_med = best_of(actstore_read, args.repeats)
    l_best, l_med = best_of(lance_raw, args.repeats)
    p_best, p_med = best_of(parquet_read, args.repeats)
    print(f"machine: {machine()}")
    print(f"data: {n_rows:,} rows x {dim} float32 ({n_langs} langs x 2 modalities x {n_points} points x "
          f"{n_ids} sentences), synthetic vectors, written in {write_s:.1f} s as {2 * n_langs} ingest jobs")
    print(f"read: point {target}, all languages -> ({n_langs * n_ids}, {dim}) numpy + Polars metadata; "
          f"best / median of {args.repeats}")
    print(f"  actstore Store.read      {a_best * 1e3:8.1f} ms / {a_med * 1e3:8.1f} ms")
    print(f"  raw Lance filtered scan  {l_best * 1e3:8.1f} ms / {l_med * 1e3:8.1f} ms")
    print(f"  Parquet, ingest order    {p_best * 1e3:8.1f} ms / {p_med * 1e3:8.1f} ms")
    print(f"ratio actstore / raw Lance: {a_best / l_best:.2f}x (goal <= 2x)")
    print(f"ratio Parquet / actstore:   {p_best / a_best:.1f}x (actstore is this much faster)")
    write_summary(args.summary, __file__,
                  f"{n_rows:,} x {dim} rows; one point, all languages -> ({n_langs * n_ids}, {dim}) numpy",
                  f"{a_best * 1e3:.1f} ms: {a_best / l_best:.2f}x a raw Lance filtered scan, "
                  f"{p_best / a_best:.0f}x faster than Parquet in ingest order")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
