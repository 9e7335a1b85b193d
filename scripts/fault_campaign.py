#!/usr/bin/env python
"""Fault campaign (issue 10): kill an ingest at every phase, rerun, count; then two ingests at once.

Kill cases: for every phase of `actstore.ingest.faults.FAULT_PHASES` (per-job phases at job 1
and job 2), an `actstore ingest` process runs with ACTSTORE_FAULT=phase[:k] and must die by
SIGKILL; the store is counted; a rerun without the variable must exit 0; the store is counted
again and compared with a clean ingest's (`fault_harness.compare_states`).

Concurrency case: two ingests of the same keys started together into one new store
(`--langs eng,fra --limit 50`); counts rows, distinct keys and duplicates (expected 0).

    python scripts/fault_campaign.py                 # forked processes (fast)
    python scripts/fault_campaign.py --spawn         # a fresh Python per process (slow, nothing shared)

Exit status 1 when any case misbehaves (a kill that did not happen, a rerun that failed or
differs from the clean store, duplicates).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' harness
from _fault_harness import (Runner, compare_states, max_vector_difference,  # noqa: E402
                            store_state)
from actstore.ingest.faults import FAULT_PHASES  # noqa: E402

PER_JOB = ("filter", "encode", "write", "texts", "rows", "job")


def ingest_args(db: Path, model: str, langs: str, limit: int) -> list[str]:
    return ["ingest", "--db", str(db), "--model", model, "--langs", langs, "--modalities", "text",
            "--limit", str(limit), "--quiet"]


def kill_cases() -> list[str]:
    cases = []
    for phase in FAULT_PHASES:
        cases.append(phase)
        if phase in PER_JOB:
            cases.append(f"{phase}:2")
    return cases


def fmt(c: dict) -> str:
    return (f"rows={c['rows']:4d} texts={c['texts']:3d} dup={c['dup']} text_dup={c['text_dup']} "
            f"points={c['points']} finalize_needed={c['finalize_needed']} "
            f"running={c['running']} interrupted={c['interrupted']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--langs", default="eng,fra")
    ap.add_argument("--limit", type=int, default=5, help="sentences per language in the kill cases")
    ap.add_argument("--concurrency-limit", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1, help="how many times to run the concurrency case")
    ap.add_argument("--no-kills", action="store_true", help="only the concurrency case")
    ap.add_argument("--no-concurrency", action="store_true", help="only the kill cases")
    ap.add_argument("--spawn", action="store_true", help="a fresh Python per process instead of forks")
    ap.add_argument("--workdir", default=None, help="keep the stores and logs here (default: a temp dir)")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="actstore-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    bad = 0
    t0 = time.perf_counter()
    with Runner(fork=not args.spawn, log_dir=work / "logs") as runner:
        clean_db = work / "clean"
        shutil.rmtree(clean_db, ignore_errors=True)
        rc = runner.run(ingest_args(clean_db, args.model, args.langs, args.limit))
        want = store_state(clean_db)
        print(f"clean ingest: rc={rc} {fmt(want.counts())}")
        print(f"\nkill cases ({args.model}, --langs {args.langs} --limit {args.limit}):")
        print(f"{'phase':12s} {'kill rc':>7s}  after kill / after rerun")
        for case in ([] if args.no_kills else kill_cases()):
            db = work / f"kill-{case.replace(':', '-')}"
            shutil.rmtree(db, ignore_errors=True)
            rc_kill = runner.run(ingest_args(db, args.model, args.langs, args.limit), fault=case)
            killed = store_state(db)
            rc_rerun = runner.run(ingest_args(db, args.model, args.langs, args.limit))
            got = store_state(db)
            problems = compare_states(got, want)
            if rc_kill != -signal.SIGKILL:
                problems.insert(0, f"not killed (rc {rc_kill})")
            if rc_rerun != 0:
                problems.insert(0, f"rerun failed (rc {rc_rerun})")
            bad += bool(problems)
            print(f"{case:12s} {rc_kill:7d}  kill:  {fmt(killed.counts())}")
            print(f"{'':12s} {rc_rerun:7d}  rerun: {fmt(got.counts())} "
                  f"max|dv|={max_vector_difference(got, want):.1e} "
                  f"{'== clean' if not problems else 'PROBLEMS: ' + '; '.join(problems)}")

        print(f"\nconcurrency: two ingests of the same keys at once (--langs {args.langs} "
              f"--limit {args.concurrency_limit}):")
        for r in range(0 if args.no_concurrency else args.rounds):
            db = work / f"concurrent-{r}"
            shutil.rmtree(db, ignore_errors=True)
            argv = ingest_args(db, args.model, args.langs, args.concurrency_limit)
            rcs = runner.run_together([argv, argv])
            st = store_state(db)
            ok = st.duplicates == 0 and st.text_duplicates == 0 and all(c == 0 for c in rcs)
            # versions kept while the other ingest was live are dropped by the next ingest
            rc_next = runner.run(argv)
            after = store_state(db)
            ok = ok and rc_next == 0 and not after.finalize and after.rows == st.rows
            bad += not ok
            print(f"round {r + 1}: rc={rcs} rows={st.rows} distinct_keys={st.keys} duplicates={st.duplicates} "
                  f"texts={st.texts} text_duplicates={st.text_duplicates} runs={st.runs} "
                  f"finalize_needed={len(st.finalize)}; after one more ingest (rc {rc_next}): "
                  f"rows={after.rows} finalize_needed={len(after.finalize)} {'ok' if ok else 'PROBLEM'}")
    print(f"\n{bad} problem case(s); {time.perf_counter() - t0:.0f} s; stores and logs in {work}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
