"""One line describing the machine a benchmark ran on (printed by every benchmark)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine(*extra: str) -> str:
    """Cores, CPU model, Python, plus any `extra` library versions the benchmark depends on."""
    cpu = "unknown CPU"
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    except OSError:
        pass
    return ", ".join([f"{os.cpu_count()} cores", cpu, *extra, f"Python {platform.python_version()}"])


def add_run_options(parser) -> None:
    """--summary PATH: where `run_all.py` collects this benchmark's README table row."""
    parser.add_argument("--summary", default=None, help="write the README table row (JSON) here")


def write_summary(path: str | None, script: str, workload: str, result: str) -> None:
    """One README table row (script, workload, result) as JSON for `run_all.py`; printed too."""
    print(f"summary: {workload} | {result}")
    if path:
        import json

        Path(path).write_text(json.dumps({"script": Path(script).name, "workload": workload, "result": result}))
