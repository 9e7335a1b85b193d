"""`actstore intervene` on the tiny random-init Whisper: rows in the `interventions` table for the
chosen set and its random controls; bad requests refused in one sentence, the store unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from _cli import cli
from actstore.ingest.items import SAMPLE_RATE
from actstore.schema import INTERVENTIONS_TABLE
from actstore.store import Store

TEXTS = ["The cat sleeps.", "Rain falls on the hills.", "We read books."]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("iv_manifest")
    rows = ["sentence_id,lang,modality,text,audio"]
    for i in range(1, 4):
        n = int((0.5 + 0.2 * (i - 1)) * SAMPLE_RATE)
        sf.write(root / f"c{i}.wav", (0.1 * np.random.default_rng(i).standard_normal(n)).astype(np.float32),
                 SAMPLE_RATE, subtype="PCM_16")
        rows += [f'{i},eng,speech,"{TEXTS[i - 1]}",c{i}.wav', f'{i},eng,text,"{TEXTS[i - 1]}",']
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    return root / "m.csv"


@pytest.fixture(scope="module")
def db(tmp_path_factory, tiny_whisper_dir, manifest):
    path = str(tmp_path_factory.mktemp("iv_db") / "db")
    cli("ingest", "--db", path, "--model", str(tiny_whisper_dir), "--source", "manifest", "--data-dir",
        str(manifest), "--langs", "eng", "--modalities", "speech", "--points", "decoder.L1.ffn", "--quiet")
    return path


def _intervene(db, model, manifest, *extra, code=0):
    return cli("intervene", "--db", db, "--model", str(model), "--data-dir", str(manifest),
               "--langs", "eng", *extra, code=code).output


def test_intervene_stores_the_set_and_its_random_controls(db, tiny_whisper_dir, manifest):
    out = _intervene(db, tiny_whisper_dir, manifest, "--site", "decoder.L1.ffn", "--units", "3,17,42",
                     "--seeds", "0,1")
    assert "RANDOM-INIT" in out and "rows saved to table 'interventions'" in out
    rows = Store.open(db).read_results(INTERVENTIONS_TABLE).sort("seed")
    assert rows["neuron_set"].to_list() == ["explicit", "random", "random"]
    assert rows["units"][0] == "3,17,42" and rows["k"].to_list() == [3, 3, 3]
    assert rows["units"][1] != rows["units"][2] and rows["random_init"].all()
    assert (rows["n_sentences"] == 3).all() and (rows["value"] == "median").all()
    np.testing.assert_allclose(rows["delta_per_token"].to_numpy(),
                               (rows["clamped_loglik_per_token"] - rows["loglik_per_token"]).to_numpy(), atol=1e-12)
    assert (rows["loglik_per_token"] < 0).all() and rows["loglik_per_token"].n_unique() == 1


@pytest.mark.parametrize("extra,message", [
    (("--site", "decoder.L7.ffn", "--units", "1"), "Unknown site 'decoder.L7.ffn'"),
    (("--site", "decoder.L1.ffn", "--top", "65"), "outside site 'decoder.L1.ffn'"),
    (("--site", "decoder.L1.self_attn.q", "--units", "1"), "not stored"),
    (("--site", "decoder.L1.ffn", "--units", "1,64"), "outside site"),
])
def test_bad_requests_leave_the_store_unchanged(db, tiny_whisper_dir, manifest, extra, message):
    store = Store.open(db)
    before = store.read_results(INTERVENTIONS_TABLE)
    out = _intervene(db, tiny_whisper_dir, manifest, *extra, code=1)
    assert message in out and "Traceback" not in out and out.count("Error:") == 1
    after = store.read_results(INTERVENTIONS_TABLE)
    assert (before is None and after is None) or before.equals(after)


def test_an_encoder_only_family_is_refused(db, tiny_bert_dir, manifest):
    out = _intervene(db, tiny_bert_dir, manifest, "--site", "text.L1.ffn", "--units", "1", code=1)
    assert "cannot condition its decoder on speech; use a family that decodes" in out


def test_top_k_reads_the_stored_ranking_and_zero_needs_no_reference(tmp_path, tiny_whisper_dir, manifest):
    import polars as pl

    from actstore.schema import NEURON_SITES_TOP_TABLE

    path = str(tmp_path / "db")
    store = Store.open(path, create=True)
    ranked = pl.DataFrame({"model": "tiny_whisper", "depth": "decoder.L1.self_attn.v", "langs": "eng",
                           "corpus": "c", "target_kind": "lang", "target": "eng", "within": "all",
                           "direction": "up", "rank": [3, 1, 2, 4], "neuron": [30, 10, 20, 40]})
    store.write_results(NEURON_SITES_TOP_TABLE, ranked, key=("model", "depth", "target", "rank"))
    back = Store.open(path)  # reopened: what the CLI wrote
    _intervene(path, tiny_whisper_dir, manifest, "--name", "tiny_whisper", "--site", "decoder.L1.self_attn.v",
               "--top", "2", "--target", "eng", "--value", "zero", "--seeds", "5")
    rows = back.read_results(INTERVENTIONS_TABLE).sort("seed")
    assert rows["neuron_set"].to_list() == ["top:eng", "random"]
    assert rows["units"][0] == "10,20" and rows["k"].to_list() == [2, 2]
    assert rows["delta_per_token"][0] != 0.0
    out = _intervene(path, tiny_whisper_dir, manifest, "--name", "tiny_whisper", "--site",
                     "decoder.L1.self_attn.v", "--top", "5", "--value", "zero", code=1)
    assert "Only 4 top neurons are stored" in out
