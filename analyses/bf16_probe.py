"""Can this machine run a torch bfloat16 matmul? Asked in a child process, so the answer cannot kill us.

The bf16 retrieval fast path (`actstore.analyses.retrieval`) doubles the CPU scan rate where the
CPU has native bf16 dot products. `/proc/cpuinfo` is not enough to decide that: on some VMs the CPU
advertises AMX, oneDNN dispatches to it, and the first bf16 matmul kills the process with SIGILL
(exit 132) -- no exception to catch. So the decision is a probe: a child Python process runs a
bf16 matmul of the fast path's shape; the fast path is used only when the child exits cleanly.

The answer is cached per (interpreter, torch version, CPU flags, ONEDNN_MAX_CPU_ISA) as a small
JSON file under actstore's cache root (`actstore.cache.cache_dir`, never the repository), so the
probe's ~2 s runs once per machine and environment, and memoised in the process.

`ACTSTORE_BF16=0` turns the fast path off without probing; `ACTSTORE_BF16=1` trusts the CPU flags
without probing (for machines known to be fine).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from actstore.cache import cache_dir

log = logging.getLogger(__name__)

#: A matmul of the fast path's shape (a query block against a corpus slice), checked for finiteness.
PROBE_CODE = (
    "import torch\n"
    "a = torch.randn(64, 1024).to(torch.bfloat16)\n"
    "b = torch.randn(4096, 1024).to(torch.bfloat16)\n"
    "c = (a @ b.T).float()\n"
    "assert bool(torch.isfinite(c).all())\n"
    "print('bf16-ok')\n"
)
_TIMEOUT_S = 120


def cpu_flags() -> frozenset[str]:
    """The bf16-related flags /proc/cpuinfo advertises (empty when it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return frozenset()
    words = set(text.split())
    return frozenset(w for w in words if w in ("avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"))


def _torch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return "none"


def cache_key(flags: frozenset[str]) -> str:
    """What the answer depends on: interpreter, torch build, CPU flags and oneDNN's ISA cap."""
    parts = [sys.executable, _torch_version(), ",".join(sorted(flags)),
             os.environ.get("ONEDNN_MAX_CPU_ISA", ""), os.environ.get("DNNL_MAX_CPU_ISA", "")]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def run_probe(command: Sequence[str] | None = None, timeout: float = _TIMEOUT_S) -> tuple[bool, str]:
    """Run the probe in a child process: (works, why). A signal, error or timeout means no."""
    command = list(command) if command is not None else [sys.executable, "-c", PROBE_CODE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"probe did not finish: {exc}"
    if done.returncode < 0:
        return False, f"probe killed by signal {-done.returncode}"
    if done.returncode != 0 or "bf16-ok" not in done.stdout:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"probe exited {done.returncode}: {tail}"
    return True, "bf16 matmul ran"


def bf16_matmul_works(*, command: Sequence[str] | None = None, directory: Path | None = None) -> bool:
    """True when torch bf16 matmuls run here and the CPU has native bf16 (cached; see module doc).

    `command` and `directory` replace the probe and its cache location (tests).
    """
    setting = os.environ.get("ACTSTORE_BF16", "").strip().lower()
    if setting in ("0", "off", "false", "no"):
        return False
    flags = cpu_flags()
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False  # no native bf16: the fast path would be slower, not faster
    if setting in ("1", "on", "true", "yes"):
        return True
    if command is None and directory is None:
        return _cached_default(cache_key(flags))
    return _probe_with_cache(cache_key(flags), command, directory)


@lru_cache(maxsize=4)
def _cached_default(key: str) -> bool:
    return _probe_with_cache(key, None, None)


def _probe_with_cache(key: str, command: Sequence[str] | None, directory: Path | None) -> bool:
    path = (directory or cache_dir("probes")) / f"bf16-{key}.json"
    try:
        return bool(json.loads(path.read_text())["works"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    works, why = run_probe(command)
    if not works:
        log.warning("bf16 fast path off: %s (set ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 if the CPU "
                    "advertises AMX it cannot run)", why)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"works": works, "why": why, "python": sys.executable,
                                   "torch": _torch_version()}))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache only costs a probe per process
        log.info("could not cache the bf16 probe result at %s: %s", path, exc)
    return works
