"""Peak memory of a 5 M-row query result: streamed to `-o x.parquet` vs collected in memory.

Builds a store of one model (2 points x 5 languages x 500 sentences = 5,000 rows, width 16,
synthetic), then runs `actstore query "<a 5,000 x 1,000 cross join>" --max-rows 0 -o x.parquet`
(the CLI, streaming batch by batch) and, as the baseline, the same query collected in memory
(`run_query(...)`) and then written, each in a fresh process; prints each one's peak RSS (and
an idle process's, which only imports actstore and opens the store), time and the ratios.

    python benchmarks/bench_query_stream.py [--rows-per-lang 500] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from actstore.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from _store_data import put  # noqa: E402  (the tests' synthetic rows)

QUERY = ("SELECT a.sample_id, a.lang, a.point, b.sentence_id, b.point AS point_b "
         "FROM activations a, activations b WHERE b.lang = 'eng'")

CHILD = r"""
import resource, sys, time
from actstore.store import Store
mode, db, out = sys.argv[1:4]
query = sys.argv[4]
t = time.perf_counter()
if mode == "stream":
    from actstore.cli import main
    main(["query", "--db", db, query, "--max-rows", "0", "-o", out], standalone_mode=False)
elif mode == "memory":
    from actstore.query import Limits, run_query
    run_query(Store.open(db, create=False), query, Limits(max_rows=None)).write_parquet(out)
else:
    Store.open(db, create=False)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run(mode: str, db: str, out: str) -> tuple[float, float]:
    res = subprocess.run([sys.executable, "-c", CHILD, mode, db, out, QUERY], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{res.stderr[-2000:]}")
    seconds, mib = res.stdout.split()[-2:]
    return float(seconds), float(mib)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows-per-lang", type=int, default=500, help="per point; result rows = 10 x 2 x this^2")
    ap.add_argument("--quick", action="store_true", help="200 rows per language (800,000 result rows)")
    ap.add_argument("--bound-mib", type=float, default=512, help="the streamed run's peak RSS must stay under this")
    add_run_options(ap)
    args = ap.parse_args()
    if args.quick:
        args.rows_per_lang = 200
    n = args.rows_per_lang
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"{tmp}/s.lance")
        rng = np.random.default_rng(0)
        for point in ("text.L1", "text.L2"):
            for lang in ("eng", "fra", "deu", "spa", "ita"):
                put(store, "m", point, "text", lang, range(n), rng.standard_normal((n, 16)).astype(np.float32))
        rows = store.count_rows()
        result_rows = rows * 2 * n
        print(f"data: {rows} activation rows; the query's result has {result_rows:,} rows x 5 columns")
        _, idle = run("idle", store.uri, "")
        t_s, m_s = run("stream", store.uri, f"{tmp}/stream.parquet")
        t_m, m_m = run("memory", store.uri, f"{tmp}/memory.parquet")
        import pyarrow.parquet as pq

        assert pq.ParquetFile(f"{tmp}/stream.parquet").metadata.num_rows == result_rows
        assert pq.ParquetFile(f"{tmp}/memory.parquet").metadata.num_rows == result_rows
        print(f"idle process (imports, open store): peak RSS {idle:.0f} MiB")
        print(f"streamed (actstore query -o x.parquet): {t_s:.2f} s, peak RSS {m_s:.0f} MiB (+{m_s - idle:.0f} over idle)")
        print(f"in memory (run_query, then write):    {t_m:.2f} s, peak RSS {m_m:.0f} MiB (+{m_m - idle:.0f} over idle)")
        ratio = (m_m - idle) / max(m_s - idle, 1)
        print(f"ratio: in-memory / streamed memory above idle = {ratio:.1f}x; time streamed / in-memory = {t_s / t_m:.2f}")
        verdict = "under" if m_s < args.bound_mib else "OVER"
        print(f"bound: streamed peak RSS {m_s:.0f} MiB is {verdict} the stated {args.bound_mib:.0f} MiB")
        write_summary(args.summary, __file__, f"{result_rows:,}-row query result (cross join) to Parquet",
                      f"streamed with -o: peak RSS {m_s:.0f} MiB (+{m_s - idle:.0f} over an idle {idle:.0f}); "
                      f"collected in memory: {m_m:.0f} MiB (+{m_m - idle:.0f}), {ratio:.1f}x; "
                      f"time {t_s:.1f} s vs {t_m:.1f} s")
        if m_s >= args.bound_mib:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
