"""Run a piece of test code in a child Python, so a signal (SIGILL from a CPU quirk) fails or skips
one test instead of killing the whole pytest process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run_isolated(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `code` (dedented) with tests/ importable; skip on a signal, fail on an error."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=TESTS)
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        pytest.skip(f"the child process died with {name}: this CPU cannot run the code under test "
                    "(for bf16 on AMX-advertising VMs set ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16)")
    assert done.returncode == 0, done.stdout + done.stderr
    return done
