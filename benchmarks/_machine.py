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
