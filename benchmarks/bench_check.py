"""What `actstore check` and the analyses' duplicate-key guard cost on a 50k-row store.

Builds a store of one model: 10 points x 5 languages x 1000 sentences = 50,000 rows of width 256
(synthetic vectors, written and finalized like an ingest), then times the guard every analysis
runs (`require_unique_keys`, uncached: a count-distinct over the five key columns with the model
filter pushed into the Lance scan) and the full `check_store`.

    python benchmarks/bench_check.py [--rows-per-lang 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from actstore.store import Store
from actstore.store.integrity import _KEY_CHECKED, check_store, require_unique_keys
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from _store_data import activation_rows  # noqa: E402  (the tests' synthetic rows)


def build(uri: str, n: int, width: int = 256) -> Store:
    store = Store.open(uri)
    rng = np.random.default_rng(0)
    points = [f"text.L{i}" for i in range(1, 11)]
    store.register_points("m", [{"point": p, "modality": "text", "layer": i + 1, "width": width,
                                 "vector_dtype": "float32"} for i, p in enumerate(points)])
    for lang in ("eng", "fra", "deu", "spa", "ita"):
        store.write_sentences(pa.table({"source": ["synthetic"] * n, "split": ["devtest"] * n, "lang": [lang] * n,
                                        "sentence_id": list(range(n)), "text": [f"s{i}" for i in range(n)]}))
        for i, p in enumerate(points):
            x = rng.standard_normal((n, width)).astype(np.float32)
            store.write_activations("m", width, activation_rows("m", p, "text", lang, range(n), x, layer=i + 1),
                                    replace=False)
    store.finalize_model("m")
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows-per-lang", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="200 rows per language, 3 repeats")
    add_run_options(ap)
    args = ap.parse_args()
    if args.quick:
        args.rows_per_lang, args.repeats = 200, 3
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = build(f"{tmp}/s.lance", args.rows_per_lang)
        print(f"rows: {store.count_rows('m')}")
        guard, full = [], []
        for _ in range(args.repeats):
            getattr(store.integrity, _KEY_CHECKED).clear()
            t0 = time.perf_counter()
            require_unique_keys(store, "m")
            guard.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = check_store(store)
            full.append(time.perf_counter() - t0)
            assert report.ok, [p.line() for p in report.problems]
        print(f"analysis guard (require_unique_keys, uncached): median {statistics.median(guard) * 1000:.0f} ms, "
              f"min {min(guard) * 1000:.0f} ms")
        print(f"full check_store: median {statistics.median(full) * 1000:.0f} ms, min {min(full) * 1000:.0f} ms")
        write_summary(args.summary, __file__, f"{store.count_rows('m'):,} rows (10 points x 5 languages), synthetic",
                      f"analysis guard {statistics.median(guard) * 1000:.0f} ms, full check "
                      f"{statistics.median(full) * 1000:.0f} ms (median of {args.repeats})")


if __name__ == "__main__":
    main()
