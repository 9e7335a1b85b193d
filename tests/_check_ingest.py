"""Run `actstore ingest ...` after a file barrier, so processes started together write together.

Usage: python _check_ingest.py BARRIER_DIR N_PROCESSES ingest --db ... (the CLI's arguments).
Each process imports everything first, then marks itself ready in BARRIER_DIR and waits until
N_PROCESSES have: their model loads and writes then overlap instead of being staggered by the
imports (issue 10 item 1: two ingests "started together").
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from actstore.cli import main
import actstore.ingest.pipeline  # noqa: F401  (import the heavy parts before the barrier)
import actstore.ingest.adapters  # noqa: F401

if __name__ == "__main__":
    barrier, n = Path(sys.argv[1]), int(sys.argv[2])
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    main(sys.argv[3:])
