"""Test-wide settings: the suite never reaches a model hub (CI has no network beyond registries),
never writes outside temporary directories, and a CPU quirk cannot take it down."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every actstore cache (espeak speech, CPU probes) goes to a session temporary directory,
    also in subprocesses, which inherit the variable; so does what tools write under
    $XDG_CONFIG_HOME (espeak-ng's PulseAudio client leaves a runtime link there)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACTSTORE_CACHE_DIR", str(tmp_path_factory.mktemp("actstore-cache")))
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
        yield


_PROBED: list = []


def _bf16_probe() -> tuple:
    if not _PROBED:
        from actstore.analyses.bf16_probe import run_probe

        _PROBED.append(run_probe())
    return _PROBED[0]


@pytest.fixture(autouse=True)
def _bf16_guard(request):
    """Tests marked `bf16` run only where a bf16 matmul survives in a child process (see
    actstore.analyses.bf16_probe): on a CPU that advertises AMX it cannot run, the first bf16
    matmul would kill pytest itself with SIGILL."""
    if request.node.get_closest_marker("bf16") is not None:
        works, why = _bf16_probe()
        if not works:
            pytest.skip(f"torch bf16 matmuls do not run here ({why}); set ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16")
