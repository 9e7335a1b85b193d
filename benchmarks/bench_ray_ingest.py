"""Ingest with the Ray engine vs the local engine on this machine, Ray's fixed costs separated.

Workload: all-MiniLM-L6-v2 (real weights) over the shipped FLORES-200 devtest text, L languages x
N sentences, 7 points (text.embed, text.L1..L6) of width 384, batch size 16, into a fresh local
store per run; one torch thread per model process (OMP_NUM_THREADS=1) on both engines.

Baseline: the local engine (`--engine local`, the default) on the same data in the same run.
Reported separately:
- Ray cluster start (`ray.init`, once per session; zero when joining a running cluster);
- per-ingest fixed cost: an ingest of ONE sentence (driver planning + actor start + model load
  in the actor), for both engines;
- the full ingest, and the marginal throughput = items / (full - one-sentence ingest).
On 2 CPU cores Ray can only add overhead for one actor; two actors show whether the second core
is used. A GPU cluster changes the picture (actors per GPU, reading in parallel), not measured here.

Run: `python benchmarks/bench_ray_ingest.py [--quick]`. Prints times; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from _machine import add_run_options, machine, write_summary  # noqa: E402
from actstore.ingest.engines.ray_engine import GROUP_BATCHES  # noqa: E402
from actstore.ingest.pipeline import IngestRequest, ingest  # noqa: E402
from actstore.store import Store  # noqa: E402

LANGS = ["eng", "fra", "deu", "ita", "nld", "fin", "est", "cat", "tur", "rus"]


class PhaseTimer:
    """`ingest(on_phase=...)` hook: wall time from one phase call to the next, per stage."""

    KEYS = {"filter": "source", "startup": "startup", "encode": "encode", "write": "write", "finish": "write"}

    def __init__(self):
        self.seconds = {"source": 0.0, "encode": 0.0, "write": 0.0}
        self.key, self.t = None, time.perf_counter()

    def __call__(self, name: str, job=None) -> None:
        self.stop()
        self.key = self.KEYS.get(name)

    def stop(self) -> None:
        now = time.perf_counter()
        if self.key is not None:
            self.seconds[self.key] = self.seconds.get(self.key, 0.0) + now - self.t
        self.key, self.t = None, now


def timed_ingest(work: Path, tag: str, **kw) -> tuple[float, object]:
    db = work / f"{tag}.lance"
    shutil.rmtree(db, ignore_errors=True)
    timer = PhaseTimer()
    t = time.perf_counter()
    summary = ingest(Store.open(db), IngestRequest(model="all-MiniLM-L6-v2", batch_size=16, **kw), progress=False,
                     on_phase=timer)
    wall = time.perf_counter() - t
    timer.stop()
    summary.seconds = timer.seconds  # the stage times travel with the summary in this script
    return wall, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 languages x 100 sentences")
    ap.add_argument("--repeats", type=int, default=2)
    add_run_options(ap)
    args = ap.parse_args()
    langs, n = (LANGS[:4], 100) if args.quick else (LANGS, 200)
    import ray
    import torch

    logging.getLogger("actstore").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="actstore-bench-ray-"))
    try:
        torch.set_num_threads(1)
        t = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        ray_start = time.perf_counter() - t
        configs = {"local engine (baseline)": {},
                   "ray, 1 actor x 1.0 CPU": {"engine": "ray"},
                   "ray, 2 actors x 0.75 CPU": {"engine": "ray", "ray_actors": 2}}
        runs: dict[str, tuple[float, object]] = {}
        for _ in range(args.repeats):  # interleaved, best wall time kept: a shared machine is noisy
            for label, kw in configs.items():
                got = timed_ingest(work, "run", langs=langs, limit=n, **kw)
                if label not in runs or got[0] < runs[label][0]:
                    runs[label] = got
        ray.shutdown()
        base = runs["local engine (baseline)"][1]
        assert all(s.items == base.items and s.rows == base.rows for _, s in runs.values())
        print(f"machine: {machine(f'torch {torch.__version__}', f'ray {ray.__version__}')}; "
              f"load average at the end {os.getloadavg()[0]:.1f}")
        print(f"data: all-MiniLM-L6-v2, FLORES-200 devtest text, {len(langs)} langs x {n} sentences = "
              f"{base.items} items, {base.rows} rows (7 points x 384), batch 16, 1 torch thread per model process")
        print(f"best of {args.repeats} interleaved runs per engine")
        print(f"  Ray cluster start (ray.init, once per session): {ray_start:.2f} s")
        print(f"  {'engine':<26} {'wall':>7} {'fixed':>7} {'encode':>7} {'write':>6} {'items/s':>8}")
        for label, (wall, s) in runs.items():
            fixed = wall - sum(s.seconds[k] for k in ("source", "encode", "write", "startup") if k in s.seconds)
            fixed += s.seconds.get("startup", 0.0)
            # Ray's encode clock starts at the first result: one group of items is already done
            done = base.items - (GROUP_BATCHES * 16 if "startup" in s.seconds else 0)
            print(f"  {label:<26} {wall:7.2f} {fixed:7.2f} {s.seconds['encode']:7.2f} {s.seconds['write']:6.2f} "
                  f"{done / s.seconds['encode']:8.1f}")
        print("  fixed = wall - (read + encode + write): driver model load and planning, plus for Ray the "
              "wait for the first result (actor start + model load + the first group of "
              f"{GROUP_BATCHES * 16} items); items/s = encode-phase throughput")
        (lw, ls), (rw, rs) = list(runs.values())[:2]
        print(f"ratio ray(1 actor) / local: wall {rw / lw:.2f}x, encode-phase {rs.seconds['encode'] / ls.seconds['encode']:.2f}x")
        write_summary(args.summary, __file__, f"all-MiniLM-L6-v2, {len(langs)} langs x {n} FLORES sentences, local Ray 2 CPUs",
                      f"Ray (1 actor) / local engine: wall {rw / lw:.2f}x, encode phase "
                      f"{rs.seconds['encode'] / ls.seconds['encode']:.2f}x; cluster start {ray_start:.1f} s once")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
