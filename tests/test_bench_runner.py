"""`make bench` (benchmarks/run_all.py): every benchmark runs in quick mode and gives a table row."""

from __future__ import annotations

import json
import subprocess
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


# One child process imports every benchmark (as `python bench_x.py --help` would: top-level imports
# and argument parsing run, the benchmark does not) and reports each one's exit code and help text.
_HELP_ALL = """
import contextlib, io, json, runpy, sys, traceback
out = {}
for path in sys.argv[1:]:
    buf = io.StringIO()
    sys.argv = [path, "--help"]
    code, error = None, ""
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        code = e.code or 0
    except BaseException:
        code, error = 1, traceback.format_exc()
    out[path] = {"code": code, "help": buf.getvalue(), "error": error}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def helps(tmp_path_factory) -> dict:
    """`--help` of every benchmark, run in one fresh interpreter outside the checkout."""
    scripts = [str(p) for p in sorted(BENCH.glob("bench_*.py"))]
    done = subprocess.run([sys.executable, "-c", _HELP_ALL, *scripts], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path_factory.mktemp("bench-help"))
    assert done.returncode == 0, done.stderr[-3000:]
    return {Path(k).name: v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_every_benchmark_imports_and_has_a_quick_mode_and_a_table_row(script, helps):
    """run_all passes --quick and --summary to every bench_*.py: each must import (a removed module
    fails here, not in `make bench`) and accept both."""
    got = helps[script]
    assert got["code"] == 0 and not got["error"], f"{script} --help failed:\n{got['error']}"
    assert "--quick" in got["help"], f"{script} needs a --quick mode for `make bench`"
    assert "--summary" in got["help"], f"{script} must write its README row (_machine.add_run_options)"
    assert "write_summary(" in (BENCH / script).read_text(), f"{script} must write its README row"


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
