"""Benchmark: AP per neuron over sites, vectorised (one sort per column) vs sklearn per column.

Synthetic, in memory: n items (L languages x m sentences, one modality), sites of d neurons
(ReLU-like float16-rounded activations: many ties). One site's language-vs-rest comparison is
what `analyze neurons` does per site and modality: one sort of every column, then every language
as target, both directions (`site_selectivity.site_ap`). The reference calls
`sklearn.metrics.average_precision_score` once per (column, target, direction) on a sample of
columns and is extrapolated per AP; both are timed in the same run, and the vectorised APs of
the sampled columns are checked equal to sklearn's (max |diff| printed).

Then a store run: S sites written with the real Store API, `site_neuron_tables` end to end
(reads, AP, top-k, spread, overlap, concentration with bootstrap), seconds per site.

Measured (2 cores, Intel Xeon, shared and loaded: load average ~6; numpy 2.4.6): n=1080 (36
languages x 30), d=8192: 1.09 s per site for 589,824 APs, 661x sklearn per AP; d=16384: 2.49 s,
543x; max |diff| 1e-17. Store run, 12 decoder sites x 4096 x 1080 items: 2.0 s per site end to
end (concentration with 200 resamples included).

Never asserts on time. Run under `flock /tmp/actstore-bench.lock` on shared machines.

    PYTHONPATH=.:tests python benchmarks/bench_neurons_sites.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _machine import add_run_options, machine, write_summary  # noqa: E402
from actstore.analyses.site_data import Site, SiteRows  # noqa: E402
from actstore.analyses.site_selectivity import site_ap  # noqa: E402


def site_rows(n_langs: int, per_lang: int, d: int, seed: int = 0) -> SiteRows:
    rng = np.random.default_rng(seed)
    langs = np.repeat([f"l{i:02d}" for i in range(n_langs)], per_lang)
    x = np.maximum(rng.standard_normal((langs.size, d)), 0).astype(np.float16).astype(np.float32)
    meta = pl.DataFrame({"lang": langs, "modality": ["text"] * langs.size})
    return SiteRows(Site("decoder.L1.ffn", "decoder", 1, "ffn"), meta, x)


def kernel(n_langs: int, per_lang: int, d: int, sample: int) -> dict[str, float]:
    from sklearn.metrics import average_precision_score

    rows = site_rows(n_langs, per_lang, d)
    t0 = time.perf_counter()
    aps = site_ap(rows)
    ours = time.perf_counter() - t0
    n_ap = len(aps) * d
    cols = np.random.default_rng(1).choice(d, size=sample, replace=False)
    lab = rows.meta["lang"].to_numpy()
    key = ("language", "l00", "text", "negative")
    t0 = time.perf_counter()
    ref = [average_precision_score(lab == "l00", -rows.x[:, j]) for j in cols]
    per_call = (time.perf_counter() - t0) / sample
    diff = float(np.abs(aps[key][cols] - np.array(ref)).max())
    return {"ours_s": ours, "per_ap_us": ours / n_ap * 1e6, "sk_per_ap_us": per_call * 1e6,
            "ratio": per_call / (ours / n_ap), "n_ap": n_ap, "diff": diff}


def store_run(n_sites: int, d: int, n_langs: int, per_lang: int, n_boot: int) -> float:
    from _store_data import put
    from actstore.analyses.neuron_sites import site_neuron_tables
    from actstore.store import Store

    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "db")
        ids = np.arange(per_lang)
        for s in range(n_sites):
            for li in range(n_langs):
                for modality in ("speech", "text"):
                    x = np.maximum(rng.standard_normal((per_lang, d)), 0).astype(np.float32)
                    put(store, "m", f"decoder.L{s + 1}.ffn", modality, f"l{li:02d}", ids, x, layer=s + 1)
        t0 = time.perf_counter()
        site_neuron_tables(store, "m", k=20, global_k=1000, n_boot=n_boot)
        return (time.perf_counter() - t0) / n_sites


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute)")
    add_run_options(ap)
    args = ap.parse_args()
    langs, per = (12, 20) if args.quick else (36, 30)
    widths = (2048,) if args.quick else (8192, 16384)
    print(machine("numpy " + np.__version__))
    for d in widths:
        r = kernel(langs, per, d, sample=50 if args.quick else 100)
        print(f"one site, n={langs * per} items ({langs} languages x {per}), d={d}: {r['n_ap']} APs "
              f"(every language, both directions) in {r['ours_s']:.2f} s = {r['per_ap_us']:.2f} us/AP; "
              f"sklearn average_precision_score {r['sk_per_ap_us']:.0f} us/AP; ratio {r['ratio']:.0f}x; "
              f"max |diff| {r['diff']:.1e}")
    sites, d_store, per_store = (3, 512, 10) if args.quick else (12, 4096, 15)
    per_site = store_run(sites, d_store, langs, per_store, n_boot=50 if args.quick else 200)
    print(f"store run: {sites} decoder sites x {d_store} neurons x {2 * langs * per_store} items "
          f"(both conditionings): {per_site:.2f} s per site end to end")
    write_summary(args.summary, __file__, f"AP per neuron, d={widths[-1]}, n={langs * per}, {langs} langs",
                  f"{r['ratio']:.0f}x faster than sklearn per column; store: {per_site:.2f} s/site")


if __name__ == "__main__":
    main()
