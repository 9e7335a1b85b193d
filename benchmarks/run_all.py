"""Run every benchmark and print the README's benchmark table from their results.

    python benchmarks/run_all.py            # quick mode: every benchmark at a small size (minutes)
    python benchmarks/run_all.py --full     # the sizes the README reports (tens of minutes)
    python benchmarks/run_all.py --only bench_tsne.py --only bench_retrieval.py

Each benchmark runs in its own process (`--summary FILE`: its README row as JSON), one after the
other so they do not compete for cores. A benchmark that fails or times out gets a FAILED row,
and the script exits non-zero. Every benchmark found as `benchmarks/bench_*.py` is run: a new one
that lacks `--quick` or `--summary` fails here rather than being skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import machine  # noqa: E402


def benchmarks() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def run_one(script: Path, *, full: bool, timeout: float, out_dir: Path) -> dict:
    summary = out_dir / f"{script.stem}.json"
    cmd = [sys.executable, str(script), "--summary", str(summary)] + ([] if full else ["--quick"])
    print(f"\n=== {script.name} {'' if full else '--quick'}", flush=True)
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, timeout=timeout, cwd=HERE.parent)
        rc = done.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    seconds = time.perf_counter() - t0
    if rc == 0 and summary.is_file():
        row = json.loads(summary.read_text())
        row["seconds"] = seconds
        return row
    return {"script": script.name, "workload": "-", "result": f"FAILED ({rc})", "seconds": seconds}


def table(rows: list[dict]) -> str:
    """The README's markdown table."""
    lines = ["| script | workload | result |", "|---|---|---|"]
    lines += [f"| `{r['script']}` | {r['workload']} | {r['result']} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the README's sizes instead of --quick")
    ap.add_argument("--only", action="append", default=None, help="run only this script (repeatable)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per benchmark (default 900 quick, 7200 full)")
    args = ap.parse_args()
    scripts = [s for s in benchmarks() if not args.only or s.name in args.only]
    timeout = args.timeout or (7200 if args.full else 900)
    with tempfile.TemporaryDirectory(prefix="actstore-bench-summaries-") as tmp:
        rows = [run_one(s, full=args.full, timeout=timeout, out_dir=Path(tmp)) for s in scripts]
    print(f"\nmachine: {machine()}; mode: {'full (README sizes)' if args.full else 'quick (small sizes)'}")
    print(table(rows))
    print("\n" + ", ".join(f"{r['script']} {r['seconds']:.0f} s" for r in rows))
    return 0 if all(not r["result"].startswith("FAILED") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
