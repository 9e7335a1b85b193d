"""`make bench` (benchmarks/run_all.py): every benchmark runs in quick mode and gives a table row."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import run_all  # noqa: E402

STUB = '''
import argparse, json, sys
ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true")
ap.add_argument("--summary")
args = ap.parse_args()
if not args.quick:
    sys.exit(5)
json.dump({"script": "bench_stub.py", "workload": "tiny", "result": "1.0 s"}, open(args.summary, "w"))
'''


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_every_benchmark_has_a_quick_mode_and_a_table_row(script):
    """run_all passes --quick and --summary to every bench_*.py: each must accept both."""
    text = (BENCH / script).read_text()
    assert '"--quick"' in text, f"{script} needs a --quick mode for `make bench`"
    assert "add_run_options(" in text and "write_summary(" in text, f"{script} must write its README row"


def test_run_all_collects_rows_and_reports_failures(tmp_path):
    ok = tmp_path / "bench_stub.py"
    ok.write_text(STUB)
    broken = tmp_path / "bench_broken.py"
    broken.write_text("raise SystemExit(3)\n")
    rows = [run_all.run_one(s, full=False, timeout=60, out_dir=tmp_path) for s in (ok, broken)]
    assert rows[0]["result"] == "1.0 s" and rows[0]["workload"] == "tiny"
    assert rows[1]["result"] == "FAILED (3)"
    full = run_all.run_one(ok, full=True, timeout=60, out_dir=tmp_path / "none")  # no --quick: exits 5
    assert full["result"] == "FAILED (5)"
    table = run_all.table(rows).splitlines()
    assert table[:2] == ["| script | workload | result |", "|---|---|---|"]
    assert table[2] == "| `bench_stub.py` | tiny | 1.0 s |" and "FAILED (3)" in table[3]


def test_write_summary_is_what_run_all_reads(tmp_path, capsys):
    from _machine import write_summary

    path = tmp_path / "row.json"
    write_summary(str(path), "/x/bench_demo.py", "a workload", "a result")
    assert json.loads(path.read_text()) == {"script": "bench_demo.py", "workload": "a workload", "result": "a result"}
    assert "summary: a workload | a result" in capsys.readouterr().out
