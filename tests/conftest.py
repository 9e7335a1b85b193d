"""Test-wide settings: the suite never reaches a model hub (CI has no network beyond registries),
never writes outside temporary directories, and a CPU quirk cannot take it down."""

import os
import sys
from pathlib import Path

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


#: Heavy modules, marked `slow` here in one place: `pytest -m "not slow"` is the quick inner loop,
#: the default run (and `make test`) still runs them. Tests marked `s3` or `ray` are slow too.
SLOW_MODULES = {
    "test_faults.py": "faults: kills and restarts ingest processes",
    "test_plugin_conformance.py": "plug-in install: builds and installs a package into a fresh environment",
    "test_wheel.py": "wheel: builds and installs the wheel",
    "test_demo_report_browser.py": "demo + browser: the whole demo pipeline, then Chromium",
    "test_report_browser.py": "browser: renders reports in Chromium",
    "test_report_compare.py": "demo + browser: three tiny models ingested and compared, then Chromium",
    "test_ray_ingest.py": "Ray: starts a local Ray cluster",
    "test_s3_store.py": "S3: a local S3 server (moto)",
    "test_store_concurrency.py": "concurrency: several writer processes",
    "test_memory_budget.py": "memory: measures peak memory of ingest subprocesses",
    "test_study_run.py": "study: runs a small study end to end, then kills and reruns it",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).name in SLOW_MODULES or item.get_closest_marker("s3") or item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    """Reference-fixture tests keep each output's worst difference in a module-level `WORST` dict
    (name -> max abs difference); print them after the run, where the README's numbers come from."""
    here = Path(__file__).resolve().parent
    for module in list(sys.modules.values()):
        worst = getattr(module, "WORST", None)
        path = getattr(module, "__file__", None)
        if not worst or not isinstance(worst, dict) or path is None or Path(path).resolve().parent != here:
            continue
        terminalreporter.section(f"worst differences: {Path(path).name}")
        for name, diff in sorted(worst.items()):
            terminalreporter.write_line(f"WORST {name}: {diff:.3g}")


# Tiny random-init models, built once per session (each build trains a tokenizer and saves weights;
# modules used to rebuild them one by one). Read-only for tests: a test that changes a model copies it.
# Builders are imported inside the fixtures so a run that needs none does not load torch.
TINY_SEAMLESS = "tiny-random-seamless-m4t-v2"


@pytest.fixture(scope="session")
def tiny_seamless_dir(tmp_path_factory) -> Path:
    """A tiny SeamlessM4T v2 directory named as the demo names it (the name is the stored model name)."""
    from _models import small_corpus
    from actstore.ingest.adapters.seamless_m4t_v2.tiny import build_tiny_seamless_m4t_v2

    return build_tiny_seamless_m4t_v2(tmp_path_factory.mktemp("tiny_seamless") / TINY_SEAMLESS,
                                      corpus_texts=small_corpus(), vocab_size=400)


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    from actstore.ingest.adapters.whisper.tiny import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    from _models import small_corpus
    from actstore.ingest.adapters.hf_text.tiny import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), corpus_texts=small_corpus())


@pytest.fixture(scope="session")
def tiny_qwen2_audio_dir(tmp_path_factory) -> Path:
    """A tiny random-init Qwen2-Audio (2 tower layers, 3 LLM layers, a 2 s window)."""
    from _models import small_corpus
    from actstore.ingest.adapters.qwen2_audio.tiny import build_tiny_qwen2_audio

    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny_qwen2_audio") / "tiny-random-qwen2-audio",
                                  corpus_texts=small_corpus(), vocab_size=600)


@pytest.fixture(scope="session")
def tiny_salmonn_dir(tmp_path_factory) -> Path:
    """A tiny random-init SALMONN as `actstore make-tiny-model --kind salmonn` writes it."""
    from _models import small_corpus
    from actstore.ingest.adapters.salmonn.tiny import build_tiny_salmonn

    return build_tiny_salmonn(tmp_path_factory.mktemp("tiny_salmonn") / "tiny-random-salmonn",
                              corpus_texts=small_corpus(), vocab_size=800)
