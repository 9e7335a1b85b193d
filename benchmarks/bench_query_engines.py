"""Which engine answers `actstore query`: Polars SQL or DuckDB, by correctness and by latency.

Correctness: the conformance corpus (tests/sql_corpus, 255 queries) over the conformance store
(tests/_sql_store.py: every table, nulls, float16 and float32 vectors, three models), answered by
(a) Polars SQL over `scan_pyarrow_dataset` scans, the engine actstore used before (its query
path reproduced here), and (b) actstore's DuckDB engine (`run_query`), each compared with DuckDB
reading the same tables from memory. Counts: agree, wrong answer (no error), error.
Latency: typical queries on a larger synthetic store (1 model, 4 points x 5 languages x N
sentences, width 256), median of repeats, connection set-up included for both (as per command).

    python benchmarks/bench_query_engines.py [--rows-per-lang 2000] [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from actstore.errors import QueryError
from actstore.query import run_query, unique_names
from actstore.sql_guard import check_plan
from actstore.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from _sql_store import build_sql_store, reference_tables  # noqa: E402
from _store_data import put  # noqa: E402
from test_query_duckdb import CORPUS, assert_same  # noqa: E402

TYPICAL = {
    "count by lang (README)": "SELECT lang, modality, COUNT(*) AS n FROM activations WHERE point = 'text.L2' GROUP BY lang, modality",
    "filtered rows + vector": "SELECT sample_id, vector FROM activations WHERE lang = 'fra' AND point = 'text.L3' AND sentence_id < 100",
    "shared ids (self-join)": "SELECT a.lang, b.lang AS lang_b, COUNT(*) AS n FROM activations a JOIN activations b "
                              "ON a.sentence_id = b.sentence_id AND a.point = b.point WHERE a.point = 'text.L1' "
                              "AND a.lang < b.lang GROUP BY a.lang, b.lang",
    "window top-3 per lang": "SELECT * FROM (SELECT lang, sentence_id, ROW_NUMBER() OVER (PARTITION BY lang ORDER BY "
                             "sentence_id DESC) AS r FROM activations WHERE point = 'text.L4') t WHERE r <= 3",
}


def polars_query(store: Store, sql: str) -> pl.DataFrame:
    """The query path actstore had before DuckDB: Polars SQL over lazy pyarrow-dataset scans."""
    frames = {"activations": store.scan_activations()}
    for name in ("runs", "points", "sentences", *store.result_tables()):
        if store.has_table(name):
            frames[name] = pl.scan_pyarrow_dataset(store.dataset(name))
    lf = pl.SQLContext(frames=frames).execute(sql)
    check_plan(lf.explain(optimized=False))
    return lf.collect()


def _compare(sql: str, got: pl.DataFrame, want: pl.DataFrame) -> str:
    """'agree', 'names' (same values, other column names) or 'wrong' (other values or rows)."""
    try:
        assert_same(sql, got, want)
        return "agree"
    except AssertionError:
        pass
    if got.width != want.width:
        return "wrong"
    try:
        assert_same(sql, got.rename(dict(zip(got.columns, want.columns))), want)
        return "names"
    except AssertionError:
        return "wrong"


def correctness(tmp: str) -> dict[str, dict[str, int]]:
    store = build_sql_store(Path(tmp) / "conformance")
    ref = duckdb.connect()
    for name, table in reference_tables(store).items():
        ref.register(name, table)
    counts = {e: {"agree": 0, "names": 0, "wrong": 0, "error": 0} for e in ("polars", "duckdb")}
    wrong_examples = []
    for sql in CORPUS:
        table = ref.sql(sql).to_arrow_table()
        want = pl.from_arrow(table.rename_columns(unique_names(table.schema).names))
        for engine, fn in (("polars", polars_query), ("duckdb", run_query)):
            try:
                got = fn(store, sql)
            except Exception:  # noqa: BLE001 - any failure (QueryError, a Polars error) is an error
                counts[engine]["error"] += 1
                continue
            counts[engine][_compare(sql, got, want)] += 1
            if engine == "polars" and _compare(sql, got, want) == "wrong":
                wrong_examples.append(sql)
    print(f"Polars SQL wrong values ({len(wrong_examples)}; joins without ON counted once):")
    for sql in [q for q in wrong_examples if "JOIN" not in q and " x, " not in q] + wrong_examples[:2]:
        print(f"  {sql}")
    return counts


def latency(tmp: str, n: int, repeats: int) -> dict[str, tuple[float, float]]:
    store = Store.open(Path(tmp) / "typical")
    rng = np.random.default_rng(0)
    for i in range(1, 5):
        for lang in ("eng", "fra", "deu", "spa", "ita"):
            put(store, "m", f"text.L{i}", "text", lang, range(n), rng.standard_normal((n, 256)).astype(np.float32),
                layer=i)
    store.finalize_model("m")
    print(f"typical-query store: {store.count_rows():,} rows x 256 float32")
    out = {}
    for label, sql in TYPICAL.items():
        times = {}
        for engine, fn in (("polars", polars_query), ("duckdb", run_query)):
            fn(store, sql)  # warm
            samples = []
            for _ in range(repeats):
                t = time.perf_counter()
                fn(store, sql)
                samples.append(time.perf_counter() - t)
            times[engine] = statistics.median(samples)
        out[label] = (times["polars"], times["duckdb"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows-per-lang", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="500 rows per language, 3 repeats")
    add_run_options(ap)
    args = ap.parse_args()
    if args.quick:
        args.rows_per_lang, args.repeats = 500, 3
    print(f"machine: {machine(f'polars {pl.__version__}', f'duckdb {duckdb.__version__}')}")
    with tempfile.TemporaryDirectory() as tmp:
        counts = correctness(tmp)
        for engine, c in counts.items():
            print(f"{engine:7s} over {len(CORPUS)} corpus queries: {c['agree']} agree with DuckDB-in-memory, "
                  f"{c['names']} same values under other column names, {c['wrong']} wrong values, "
                  f"{c['error']} errors")
        times = latency(tmp, args.rows_per_lang, args.repeats)
    for label, (tp, td) in times.items():
        print(f"{label:26s} polars {tp * 1000:7.1f} ms   duckdb {td * 1000:7.1f} ms   duckdb/polars {td / tp:.2f}")
    geo = statistics.geometric_mean([td / tp for tp, td in times.values()])
    p, d = counts["polars"], counts["duckdb"]
    write_summary(args.summary, __file__, f"{len(CORPUS)} corpus queries; 4 typical queries on "
                  f"{20 * args.rows_per_lang:,} rows",
                  f"wrong values: Polars SQL {p['wrong']} (+{p['names']} other column names, {p['error']} errors), "
                  f"DuckDB {d['wrong']} ({d['names']}, {d['error']}); typical latency DuckDB/Polars {geo:.2f}x (geometric mean)")


if __name__ == "__main__":
    main()
