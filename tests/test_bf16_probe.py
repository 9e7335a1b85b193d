"""The bf16 fast path is chosen by a child-process probe that cannot kill the caller."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from actstore.analyses import bf16_probe, retrieval

DIES = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
SURVIVES = [sys.executable, "-c", "print('bf16-ok')"]
NATIVE = frozenset({"avx512_bf16"})


@pytest.fixture
def native_bf16_cpu(monkeypatch):
    """Pretend /proc/cpuinfo advertises native bf16, so the probe decides."""
    monkeypatch.delenv("ACTSTORE_BF16", raising=False)
    monkeypatch.setattr(bf16_probe, "cpu_flags", lambda: NATIVE)


def test_probe_killed_by_a_signal_means_no_fast_path(native_bf16_cpu, tmp_path):
    assert bf16_probe.run_probe(DIES) == (False, "probe killed by signal 4")
    assert bf16_probe.bf16_matmul_works(command=DIES, directory=tmp_path) is False
    cached = json.loads(next(tmp_path.glob("bf16-*.json")).read_text())
    assert cached["works"] is False and "signal 4" in cached["why"]


def test_probe_that_runs_enables_the_fast_path_and_is_cached(native_bf16_cpu, tmp_path):
    assert bf16_probe.bf16_matmul_works(command=SURVIVES, directory=tmp_path) is True
    # the cached answer is used: a probe that would now die is never run
    assert bf16_probe.bf16_matmul_works(command=DIES, directory=tmp_path) is True


def test_probe_errors_and_timeouts_mean_no(native_bf16_cpu):
    assert bf16_probe.run_probe([sys.executable, "-c", "raise SystemExit(3)"])[0] is False
    assert bf16_probe.run_probe([sys.executable, "-c", "print('nothing')"])[0] is False
    works, why = bf16_probe.run_probe([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert works is False and "did not finish" in why
    assert bf16_probe.run_probe(["/nonexistent/python"])[0] is False


def test_cache_key_follows_the_onednn_isa_cap(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    plain = bf16_probe.cache_key(NATIVE)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert bf16_probe.cache_key(NATIVE) != plain
    assert bf16_probe.cache_key(frozenset()) != bf16_probe.cache_key(NATIVE)


def test_environment_switch_and_cpu_without_bf16(monkeypatch, tmp_path):
    monkeypatch.setattr(bf16_probe, "cpu_flags", lambda: NATIVE)
    monkeypatch.setenv("ACTSTORE_BF16", "0")
    assert bf16_probe.bf16_matmul_works(command=SURVIVES, directory=tmp_path) is False
    monkeypatch.setenv("ACTSTORE_BF16", "1")
    assert bf16_probe.bf16_matmul_works(command=DIES, directory=tmp_path) is True
    monkeypatch.delenv("ACTSTORE_BF16")
    monkeypatch.setattr(bf16_probe, "cpu_flags", lambda: frozenset())
    assert bf16_probe.bf16_matmul_works(command=SURVIVES, directory=tmp_path) is False
    assert not list(tmp_path.iterdir())  # no probe ran


def test_large_scan_on_a_failing_cpu_stays_exact_float32(monkeypatch):
    """A large retrieval where the probe says no: no bf16 code runs, the answer is exact."""
    monkeypatch.setattr(retrieval, "bf16_matmul_works", lambda: False)

    def boom(*a, **k):
        raise AssertionError("the bf16 path ran although the probe said no")

    monkeypatch.setattr(retrieval, "_topk_bf16_certified", boom)
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((20_000, 16)).astype(np.float32)
    queries = corpus[:64] + 1e-3 * rng.standard_normal((64, 16)).astype(np.float32)
    idx, _ = retrieval.topk_cosine(queries, corpus, 1)
    np.testing.assert_array_equal(idx[:, 0], np.arange(64))


def test_default_cache_lives_under_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("ACTSTORE_CACHE_DIR", str(tmp_path / "root"))
    monkeypatch.setattr(bf16_probe, "cpu_flags", lambda: NATIVE)
    monkeypatch.delenv("ACTSTORE_BF16", raising=False)
    bf16_probe._cached_default.cache_clear()
    monkeypatch.setattr(bf16_probe, "run_probe", lambda command=None: (False, "probe killed by signal 4"))
    assert bf16_probe.bf16_matmul_works() is False
    assert [p.parent for p in (tmp_path / "root").rglob("bf16-*.json")] == [tmp_path / "root" / "probes"]
    bf16_probe._cached_default.cache_clear()
