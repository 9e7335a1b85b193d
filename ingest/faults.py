"""Deterministic fault injection: die abruptly at a named ingest phase (ACTSTORE_FAULT).

`ACTSTORE_FAULT=phase[:k]` makes an `actstore ingest` process SIGKILL itself (no cleanup
handlers, no `finally`, no flush: what a power loss or the OOM killer does) the k-th time
(default 1) the pipeline reaches `phase`. The phases, in the order an ingest reaches them:

    plan       model loaded, before the store is read or written
    run        the `runs` row (status running) is committed
    filter     before a job's pending items are taken up   (per job; its keys were read before run)
    encode     before a job's forward passes               (per job)
    write      before a job's first commit                 (per job)
    texts      the job's sentence texts are committed, its activations not yet   (per job)
    rows       the job's activations are committed, the points not registered yet (per job)
    job        the job is complete (rows, texts, points)   (per job)
    finish     every job done, before finalize
    indexed    inside finalize: indices built, fragments not yet compacted (per table)
    compacted  inside finalize: compaction done, old versions not yet removed (per table)
    finalized  finalize done, the run's final status not yet written

It exists so tests and `scripts/fault_campaign.py` can kill an ingest at every commit boundary
and check that a rerun makes the store whole. When the variable is unset `fault_hook` returns
None and the pipeline's phase calls are a `None` check, nothing more.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable, Mapping

from actstore.errors import ActstoreError

ENV = "ACTSTORE_FAULT"

#: every phase the pipeline reports, in order (see the module docstring)
FAULT_PHASES = ("plan", "run", "filter", "encode", "write", "texts", "rows", "job", "finish",
                "indexed", "compacted", "finalized")

#: exit status where SIGKILL does not exist (Windows): distinctive, never a normal exit
FAULT_EXIT_CODE = 87


def parse_fault(spec: str) -> tuple[str, int]:
    """(phase, k) from `phase[:k]`; a bad spec is one sentence naming the fix."""
    phase, _, k = spec.strip().partition(":")
    if phase not in FAULT_PHASES:
        raise ActstoreError(f"{ENV}={spec!r} names no ingest phase; use one of {', '.join(FAULT_PHASES)} "
                            "with an optional :k (the k-th time, from 1).")
    if not k:
        return phase, 1
    if not k.isdigit() or int(k) < 1:
        raise ActstoreError(f"{ENV}={spec!r} has a bad count {k!r}; write phase:k with k a whole number from 1.")
    return phase, int(k)


def die(phase: str, k: int) -> None:
    """End this process at once, as abruptly as a kill -9."""
    try:
        os.write(2, f"actstore: {ENV} fault at {phase}:{k}, killing pid {os.getpid()}\n".encode())
    except OSError:
        pass
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(FAULT_EXIT_CODE)  # pragma: no cover  (no SIGKILL on this platform)


def fault_hook(environ: Mapping[str, str] | None = None) -> Callable[[str, object], None] | None:
    """The `on_phase` hook that dies at the phase named by ACTSTORE_FAULT, or None when unset."""
    spec = (os.environ if environ is None else environ).get(ENV, "")
    if not spec:
        return None
    phase, k = parse_fault(spec)
    seen = [0]

    def hook(name: str, _job: object = None) -> None:
        if name == phase:
            seen[0] += 1
            if seen[0] == k:
                sys.stderr.flush()
                die(phase, k)

    return hook


def with_fault(on_phase: Callable[[str, object], object] | None) -> Callable[[str, object], object] | None:
    """The caller's `on_phase` hook, preceded by the ACTSTORE_FAULT one when that variable is set."""
    fault = fault_hook()
    if fault is None:
        return on_phase
    if on_phase is None:
        return fault

    def both(name: str, job: object) -> None:
        fault(name, job)
        on_phase(name, job)

    return both
