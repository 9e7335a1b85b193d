"""Campaign (issue 10, item 1): two ingests of the same model into one NEW store, started together.

Each trial starts two `actstore ingest --langs eng,fra --limit N` processes that import
everything, meet at a file barrier and then run, so their model loads and writes overlap. It
prints per trial the exit codes, the rows stored, the duplicate keys (activations and sentences)
and whether `actstore check` passes, then the totals.

    python scripts/campaign_concurrency.py [--trials 5] [--limit 5] [--model all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from actstore.cli import main
    import actstore.ingest.pipeline, actstore.ingest.adapters  # heavy imports before the barrier
    barrier, n = Path(sys.argv[1]), int(sys.argv[2])
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    main(sys.argv[3:])
""")


def trial(root: Path, model: str, limit: int) -> dict:
    from actstore.schema import ACTIVATION_KEY, SENTENCES_KEY
    from actstore.store import Store
    from actstore.store.integrity import check_store, count_duplicates

    db, barrier = root / "store.lance", root / "barrier"
    barrier.mkdir()
    args = [sys.executable, "-c", WORKER, str(barrier), "2", "ingest", "--db", str(db), "--model", model,
            "--modalities", "text", "--langs", "eng,fra", "--limit", str(limit), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    store = Store.open(db, create=False)
    rows = dup = 0
    for table in store.points()["table_name"].unique().to_list():
        rows += store.dataset(table).count_rows()
        dup += count_duplicates(store, table, ACTIVATION_KEY)[1]
    sdup = count_duplicates(store, "sentences", SENTENCES_KEY)[1]
    report = check_store(store)
    return {"codes": [p.returncode for p in procs], "rows": rows, "dup_rows": dup, "dup_sentences": sdup,
            "check": "ok" if report.ok else "; ".join(p.line() for p in report.problems),
            "errors": [o.strip().splitlines()[-1] for o, p in zip(outs, procs) if p.returncode]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    a = ap.parse_args()
    totals = {"trials": 0, "failed_processes": 0, "dup_rows": 0, "dup_sentences": 0, "check_failed": 0}
    for i in range(a.trials):
        with tempfile.TemporaryDirectory() as tmp:
            r = trial(Path(tmp), a.model, a.limit)
        print(f"trial {i + 1}: exit codes {r['codes']}, {r['rows']} rows, {r['dup_rows']} duplicate rows, "
              f"{r['dup_sentences']} duplicate sentences, check {r['check']}"
              + (f", errors: {r['errors']}" if r["errors"] else ""), flush=True)
        totals["trials"] += 1
        totals["failed_processes"] += sum(c != 0 for c in r["codes"])
        totals["dup_rows"] += r["dup_rows"]
        totals["dup_sentences"] += r["dup_sentences"]
        totals["check_failed"] += r["check"] != "ok"
    print("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))


if __name__ == "__main__":
    main()
