"""Bounded ingest memory (issue 10, item 3): long items are refused before any model runs, batches
stay under a memory budget, and the estimate matches a measured peak."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from _models import speech_items
from actstore.cli import main
from actstore.errors import ActstoreError
from actstore.ingest import adapters as adapter_registry
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.salmonn.adapter import SalmonnAdapter
from actstore.ingest.items import SAMPLE_RATE, Item
from actstore.ingest.memory import (DEFAULT_MAX_SECONDS, BatchCost, CostModel, MemoryLimitError,
                                    available_memory, budgeted_batches, parse_size, resolve_limits)
from actstore.ingest.pipeline import IngestRequest, ingest
from actstore.ingest.tiny_builders import build_tiny
from actstore.store import Store

MiB = 1024**2


def _manifest(tmp_path, seconds: list[float], texts: bool = False):
    """A manifest of English speech clips of the given lengths (16-bit wavs written here)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rows = ["sentence_id,lang,modality,text,audio"]
    for i, s in enumerate(seconds, start=1):
        n = int(s * SAMPLE_RATE)
        wav = tmp_path / f"clip{i}.wav"
        rng = np.random.default_rng(i)
        sf.write(wav, (0.1 * rng.standard_normal(n)).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        rows.append(f"{i},eng,speech,,{wav.name}")
        if texts:
            rows.append(f"{i},eng,text,Sentence number {i}.,")
    path = tmp_path / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def counted(monkeypatch):
    """Load adapters through the registry but count every encoder forward (hooks set by the test)."""
    calls: list[str] = []

    def load(model, **kw):
        ad = load_adapter(model, **kw)
        for attr in ("speech_encoder", "text_encoder", "encoder", "model"):
            module = getattr(ad, attr, None)
            if module is not None and hasattr(module, "register_forward_hook"):
                # a pre-hook: the adapter's capture may end the forward early, skipping post-hooks
                module.register_forward_pre_hook(lambda m, a, name=attr: calls.append(name))
        return ad

    monkeypatch.setattr(adapter_registry, "load_adapter", load)
    return calls


def _request(model, manifest, **kw) -> IngestRequest:
    return IngestRequest(model=str(model), source="manifest", data_dir=str(manifest), langs=["eng"],
                         modalities=kw.pop("modalities", ["speech"]), **kw)


# -- refused before any model runs ------------------------------------------------------------

def test_a_120s_clip_is_refused_before_any_model_runs(tmp_path, tiny_seamless_dir, counted):
    manifest = _manifest(tmp_path, [3.0, 120.0, 2.0], texts=True)
    store = Store.open(tmp_path / "db")
    with pytest.raises(MemoryLimitError) as err:
        ingest(store, _request(tiny_seamless_dir, manifest, modalities=["text", "speech"]), progress=False)
    msg = str(err.value)
    assert "eng/manifest:devtest:eng:clip2.wav" in msg and "120.0 s" in msg and "--max-seconds 60" in msg
    assert msg.count(".") >= 1 and "\n" not in msg
    assert counted == []  # no forward at all, not even the text job planned before the speech job
    assert store.runs().height == 0 and store.count_rows() == 0
    ingest(store, _request(tiny_seamless_dir, _manifest(tmp_path / "ok", [1.0])), progress=False)
    assert counted  # the hooks do count forwards


def test_cli_names_the_item_and_the_fix(tmp_path, tiny_seamless_dir):
    manifest = _manifest(tmp_path, [120.0])
    db = tmp_path / "db"
    result = CliRunner().invoke(main, ["ingest", "--db", str(db), "--model", str(tiny_seamless_dir),
                                       "--source", "manifest", "--data-dir", str(manifest), "--quiet"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "clip1.wav" in result.output and "--max-seconds" in result.output
    assert Store.open(db).runs().height == 0


def test_one_item_over_the_budget_is_refused_with_its_estimate(tmp_path, tiny_seamless_dir, counted):
    manifest = _manifest(tmp_path, [50.0, 2.0])
    store = Store.open(tmp_path / "db")
    with pytest.raises(MemoryLimitError) as err:
        ingest(store, _request(tiny_seamless_dir, manifest, max_seconds=60, memory_budget="256MiB"),
               progress=False)
    msg = str(err.value)
    assert "clip1.wav" in msg and "50.0 s" in msg and "GiB of activation memory" in msg
    assert "256.0 MiB" in msg and "--memory-budget" in msg and "--max-seconds" in msg
    assert counted == [] and store.runs().height == 0


def test_max_seconds_lets_a_long_item_through_within_budget(tmp_path, tiny_seamless_dir):
    manifest = _manifest(tmp_path, [12.0, 1.0])
    store = Store.open(tmp_path / "db")
    with pytest.raises(MemoryLimitError, match="over --max-seconds 10"):
        ingest(store, _request(tiny_seamless_dir, manifest, max_seconds=10), progress=False)
    summary = ingest(store, _request(tiny_seamless_dir, manifest, max_seconds=15, memory_budget="1GiB"),
                     progress=False)
    assert summary.items == 2
    params = json.loads(store.runs()["params"][-1])  # provenance records the limits
    assert params["max_seconds"] == 15 and params["memory_budget"] == 1024**3


def test_windowed_model_defaults_to_its_window_and_truncates_only_when_asked(tmp_path, tiny_whisper_dir):
    manifest = _manifest(tmp_path, [1.5, 0.5])  # the tiny Whisper reads 1 s
    store = Store.open(tmp_path / "db")
    with pytest.raises(MemoryLimitError, match=r"reads only 1 s and would truncate it"):
        ingest(store, _request(tiny_whisper_dir, manifest), progress=False)
    with pytest.warns(UserWarning, match="Truncating 1 clip"):
        summary = ingest(store, _request(tiny_whisper_dir, manifest, max_seconds=2), progress=False)
    assert summary.items == 2


# -- default values per adapter ----------------------------------------------------------------

def test_default_limits_per_adapter(tmp_path, tiny_seamless_dir, tiny_whisper_dir, tiny_bert_dir):
    seamless, whisper, bert = (load_adapter(str(d)) for d in (tiny_seamless_dir, tiny_whisper_dir, tiny_bert_dir))
    assert resolve_limits(seamless, max_seconds=None, memory_budget=None).max_seconds == DEFAULT_MAX_SECONDS == 60
    assert whisper.speech_window() == 1.0  # the tiny model's window; released Whisper: 30 s
    assert resolve_limits(whisper, max_seconds=None, memory_budget=None).max_seconds == 1.0
    assert resolve_limits(whisper, max_seconds=45, memory_budget=None).max_seconds == 45
    assert SalmonnAdapter.window_seconds == 30.0
    sonar = load_adapter(str(build_tiny("sonar", tmp_path / "sonar")))
    assert sonar.speech_window() is None and resolve_limits(sonar, max_seconds=None, memory_budget=None).max_seconds == 60
    assert sonar.cost_model("speech").positions(SAMPLE_RATE) == 50 and sonar.cost_model("text").max_positions > 0
    limits = resolve_limits(bert, max_seconds=None, memory_budget=None)
    avail = available_memory()
    assert avail is not None and 0 < limits.budget <= avail
    assert resolve_limits(bert, max_seconds=None, memory_budget=123).budget == 123

    # what each adapter declares: SeamlessM4T's relative positions cost head_size per frame pair
    sp = seamless.cost_model("speech")
    assert (sp.width, sp.heads, sp.pair_elements, sp.window_positions) == (32, 1, 32, None)
    assert sp.positions(20 * SAMPLE_RATE) == 1000  # 50 frames a second
    wp = whisper.cost_model("speech")
    assert wp.positions(1) == wp.positions(SAMPLE_RATE * 600) == 50  # a fixed window (attention positions)
    tp = bert.cost_model("text")  # the base class's conservative default, capped by truncation
    assert tp.width == max(bert.width(p) for p in bert.points("text")) and tp.max_positions == bert.max_length


def test_the_conservative_default_for_an_adapter_that_declares_nothing(tiny_seamless_dir):
    seamless = load_adapter(str(tiny_seamless_dir))
    generic = super(type(seamless), seamless).cost_model("speech")  # the Adapter base's guess
    declared = seamless.cost_model("speech")
    assert generic.width == declared.width and generic.layers == declared.layers
    assert generic.positions(SAMPLE_RATE) == 50


# -- batching under a budget -----------------------------------------------------------------------

def test_batches_of_a_long_and_short_mix_stay_under_the_budget(tiny_seamless_dir):
    seamless = load_adapter(str(tiny_seamless_dir))
    cost = BatchCost(seamless)
    secs = [30, 2, 28, 3, 25, 1, 20, 4, 2, 2, 3, 1]
    items = speech_items([int(s * SAMPLE_RATE) for s in secs])
    one = lambda batch: cost({"speech": batch})  # noqa: E731
    budget = int(1.05 * one(items[:1]))  # room for the 30 s clip alone, not beside the 28 s one
    assert one(items[:8]) > 2 * budget  # the count-only first batch would blow the budget
    out = budgeted_batches(items, 8, one, budget)
    assert sorted(it.sample_id for b in out for it in b) == sorted(it.sample_id for it in items)
    assert all(one(b) <= budget for b in out) and all(len(b) <= 8 for b in out)
    # the 30 s clip alone, 28 s + 25 s, then 20 s with the short ones up to --batch-size 8, the rest
    assert [[it.length // SAMPLE_RATE for it in b] for b in out] == [
        [30], [28, 25], [20, 4, 3, 3, 2, 2, 2, 1], [1]]
    lengths = [it.length for b in out for it in b]
    assert lengths == sorted(lengths, reverse=True)  # still length-bucketed
    assert [len(b) for b in budgeted_batches(items, 5)] == [5, 5, 2]  # no budget: a count only


def test_budgeted_ingest_stores_the_same_vectors(tmp_path, tiny_seamless_dir):
    manifest = _manifest(tmp_path, [8.0, 1.0, 7.0, 2.0, 1.5])
    stores = {}
    for budget in ("64MiB", "8GiB"):
        store = Store.open(tmp_path / budget)
        ingest(store, _request(tiny_seamless_dir, manifest, batch_size=5, memory_budget=budget), progress=False)
        stores[budget] = (store.scan_activations().sort(["point", "sample_id"]).collect())
    small, big = stores["64MiB"], stores["8GiB"]
    assert small.height == big.height > 0
    np.testing.assert_allclose(np.stack(small["vector"].to_list()), np.stack(big["vector"].to_list()),
                               atol=1e-5, rtol=0)


def test_cost_model_formula():
    m = CostModel.speech(50, width=8, layers=2, heads=2, ffn_width=16, pair_elements=4)
    t = m.positions(10 * SAMPLE_RATE)
    assert t == 500
    assert m.batch_bytes([10 * SAMPLE_RATE] * 3) == 4 * (t * t * (4 + 3 * (2 * 6 + 1)) + 3 * t * (8 * 6 + 32))
    assert m.batch_bytes([]) == 0
    capped = CostModel(width=8, layers=1, max_positions=10, extra_positions=2)
    assert capped.positions(1000) == 12


@pytest.mark.parametrize("text, value", [("2GiB", 2 * 1024**3), ("512MB", 512 * 1000**2), ("1.5g", 1_500_000_000),
                                         ("1048576", 1048576), (None, None), (77, 77)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["lots", "2 parsecs", "0", "-1GiB", ""])
def test_bad_sizes_and_seconds_are_refused(text, tmp_path, tiny_bert_dir):
    with pytest.raises(ActstoreError, match="--memory-budget"):
        parse_size(text)
    store = Store.open(tmp_path / "db")
    with pytest.raises(ActstoreError, match="--memory-budget"):
        ingest(store, IngestRequest(model=str(tiny_bert_dir), memory_budget=text), progress=False)


def test_max_seconds_must_be_positive(tmp_path, tiny_bert_dir):
    with pytest.raises(ActstoreError, match="--max-seconds 0 must be more than 0"):
        ingest(Store.open(tmp_path / "db"), IngestRequest(model=str(tiny_bert_dir), max_seconds=0), progress=False)


# -- the estimate against a measured peak ---------------------------------------------------------

_MEASURE = textwrap.dedent("""
import json, sys
import numpy as np
from actstore.ingest.adapters import load_adapter
from actstore.ingest.items import Item
from actstore.ingest.memory import BatchCost

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))

ad = load_adapter(sys.argv[1])
n, secs = int(sys.argv[2]), float(sys.argv[3])
items = [Item(i, "eng", "speech", f"s{i}", "x", audio=(0.1 * np.random.default_rng(i).standard_normal(
    int(secs * 16000))).astype(np.float32)) for i in range(n)]
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS:")
ad.encode(items, ad.points("speech"))
print(json.dumps({"measured": status("VmHWM:") - before, "estimate": BatchCost(ad)({"speech": items})}))
""")


def test_estimate_covers_the_measured_peak(tiny_seamless_dir):
    """One forward of 2 x 20 s on the tiny SeamlessM4T v2, in a fresh process: the peak RSS growth
    (VmHWM, reset just before the forward) stays under the estimate, which is not wildly above it.

    Outside interference only ever raises a peak, so a second fresh process is measured when the
    first exceeds the estimate, and the lower peak counts."""
    def measure() -> dict:
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(tiny_seamless_dir), "2", "20"],
                             capture_output=True, text=True, check=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1])

    r = measure()
    if r["measured"] > r["estimate"]:
        r = min(r, measure(), key=lambda x: x["measured"])
    assert r["measured"] > 100 * MiB  # the quadratic term is real (T = 1000 frames)
    assert r["measured"] <= r["estimate"] <= 1.5 * r["measured"], r


def test_a_zero_byte_budget_from_the_library_is_refused():
    with pytest.raises(ActstoreError, match="--memory-budget 0 must be more than zero"):
        parse_size(0)
