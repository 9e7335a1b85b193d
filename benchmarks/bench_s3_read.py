"""S3 vs local read of one aligned set: the same store on a local S3 server (moto) and on disk.

Workload (synthetic vectors, real store): L languages x 2 modalities x P points x N sentences x
1024 float32 dims, written the way ingest writes them (one commit per (language, modality) job).
The read: one point, every language -> Polars metadata + (L*N, 1024) float32 array via
`Store.read` (filter/projection pushdown), the unit every analysis starts from.

Baselines in the same run: the identical store in a local directory read the same way, and a raw
Lance filtered scan of the S3 table (what actstore adds on top of Lance). The S3
side is moto's threaded server on 127.0.0.1 (in-process, in memory): it measures actstore's and
Lance's object-store overhead (HTTP requests, range reads, no page cache), not a network; a real
bucket adds round-trip latency per request on top.

Run: `python benchmarks/bench_s3_read.py [--quick]`. Prints times and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from actstore.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from _store_data import activation_rows  # noqa: E402  (tests/: synthetic rows, real store)


def best_of(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def start_moto() -> tuple[object, str]:
    from moto.server import ThreadedMotoServer
    import boto3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"})
    boto3.client("s3").create_bucket(Bucket="actstore-bench")
    return server, endpoint


def fill(store: Store, langs, points, n_ids: int, dim: int) -> float:
    rng = np.random.default_rng(0)
    store.register_points("bench", [
        {"point": p, "modality": m, "layer": int(p.split("L")[1]), "width": dim, "vector_dtype": "float32"}
        for m, ps in points.items() for p in ps
    ])
    t0 = time.perf_counter()
    for lang in langs:
        for modality, ps in points.items():
            job = pa.concat_tables([
                activation_rows("bench", p, modality, lang, range(n_ids),
                                rng.standard_normal((n_ids, dim), dtype=np.float32), layer=int(p.split("L")[1]))
                for p in ps])
            store.write_activations("bench", dim, job, replace=False)
    store.finalize_model("bench")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 languages, 4 points, 200 sentences")
    ap.add_argument("--repeats", type=int, default=7)
    add_run_options(ap)
    args = ap.parse_args()
    n_langs, n_points, n_ids, dim = (8, 4, 200, 1024) if args.quick else (30, 8, 200, 1024)
    langs = [f"l{i:02d}" for i in range(n_langs)]
    points = {m: [f"{m}.L{i}" for i in range(1, n_points + 1)] for m in ("speech", "text")}
    server, endpoint = start_moto()
    work = Path(tempfile.mkdtemp(prefix="actstore-bench-s3-"))
    try:
        local = Store.open(work / "store.lance")
        remote = Store.open("s3://actstore-bench/store")
        w_local = fill(local, langs, points, n_ids, dim)
        w_s3 = fill(remote, langs, points, n_ids, dim)
        target = points["speech"][-1]
        cols = ["lang", "sentence_id", "sample_id", "modality", "point"]
        results = {}
        for name, store in (("local directory", local), ("S3 (moto, 127.0.0.1)", remote)):
            def read(store=store):
                s = store.read("bench", points=target, columns=cols)
                assert s.vectors.shape == (n_langs * n_ids, dim)
            read()
            results[name] = best_of(read, args.repeats)
        ds = remote.dataset(remote.points("bench")["table_name"][0])
        flt = f"model = 'bench' AND point = '{target}'"
        results["raw Lance scan on S3"] = best_of(
            lambda: ds.to_table(columns=cols + ["vector"], filter=flt), args.repeats)
        fresh = []  # a new process's first read: open the store, list tables, read (no caches)
        for _ in range(3):
            t = time.perf_counter()
            Store.open("s3://actstore-bench/store", create=False).read("bench", points=target, columns=cols)
            fresh.append(time.perf_counter() - t)
        n_rows = n_langs * 2 * n_points * n_ids
        mb = n_rows * dim * 4 / 2**20
        print(f"machine: {machine()}")
        print(f"data: {n_rows:,} rows x {dim} float32 (~{mb:.0f} MB; {n_langs} langs x 2 modalities x "
              f"{n_points} points x {n_ids} sentences), synthetic; written in {w_local:.1f} s locally, "
              f"{w_s3:.1f} s to S3, {2 * n_langs} commits each")
        print(f"read: point {target}, all languages -> ({n_langs * n_ids}, {dim}) numpy + metadata; "
              f"best / median of {args.repeats}")
        for name, (best, med) in results.items():
            print(f"  {name:<22} {best * 1e3:8.1f} ms / {med * 1e3:8.1f} ms")
        (lb, _), (sb, _), (rb, _) = results.values()
        print(f"  S3 cold (open + read)  {min(fresh) * 1e3:8.1f} ms best of 3")
        print(f"ratio S3 / local: {sb / lb:.1f}x (baseline: the same store in a local directory)")
        print(f"ratio actstore / raw Lance, both on S3: {sb / rb:.2f}x (the rest is the server's: "
              "moto serves range reads from Python)")
        write_summary(args.summary, __file__, f"one aligned set ({n_langs * n_ids} x {dim}) from {n_rows:,} rows, "
                      "local moto S3 vs local directory",
                      f"local {lb * 1e3:.1f} ms, S3 {sb * 1e3:.0f} ms ({sb / lb:.0f}x; raw Lance on S3 {rb * 1e3:.0f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()


if __name__ == "__main__":
    main()
