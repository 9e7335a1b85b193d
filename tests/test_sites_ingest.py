"""`actstore ingest --sites ... --target-lang ...` through the CLI: stored (float16), resumable,
recorded in the run's params; bad requests refused in one sentence with the store unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from _cli import cli
from actstore.ingest.items import SAMPLE_RATE
from actstore.store import Store

SENTENCES = {"eng": ["The cat sleeps.", "Rain falls on the hills.", "We read books."],
             "fra": ["Le chat dort.", "La pluie tombe sur les collines.", "Nous lisons des livres."]}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """English speech (0.5-0.9 s, with transcripts), English and French text, ids 1..3."""
    root = tmp_path_factory.mktemp("sites_manifest")
    rows = ["sentence_id,lang,modality,text,audio"]
    for i in range(1, 4):
        wav = root / f"clip{i}.wav"
        rng = np.random.default_rng(i)
        n = int((0.5 + 0.2 * (i - 1)) * SAMPLE_RATE)
        sf.write(wav, (0.1 * rng.standard_normal(n)).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        rows.append(f'{i},eng,speech,"{SENTENCES["eng"][i - 1]}",{wav.name}')
        for lang in ("eng", "fra"):
            rows.append(f'{i},{lang},text,"{SENTENCES[lang][i - 1]}",')
    path = root / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _ingest(db, model, manifest, *extra, code=0):
    return cli("ingest", "--db", db, "--model", str(model), "--source", "manifest", "--data-dir",
               str(manifest), "--langs", "eng", "--quiet", *extra, code=code).output


def test_seamless_sites_and_translation_are_stored_and_resumable(tmp_path, tiny_seamless_dir, manifest):
    db = str(tmp_path / "db")
    args = ("--layers", "1", "--sites", "ffn,cross_attn.k,cross_attn.v", "--target-lang", "fra",
            "--vector-dtype", "float16")
    out = _ingest(db, tiny_seamless_dir, manifest, *args)
    assert "0 already stored" in out
    store = Store.open(db)
    model = store.models()[0]
    pts = store.points(model)
    assert {"speech.L1.ffn1", "speech.L1.ffn2", "text.L1.ffn", "decoder.L1.ffn",
            "decoder.L1.cross_attn.k", "decoder.L1.cross_attn.v", "speech.L1", "text.L1"} == set(pts["point"])
    rows = store.read(model, points="decoder.L1.cross_attn.k")
    assert sorted(rows.meta["modality"].to_list()) == ["speech"] * 3 + ["text"] * 3  # both conditionings
    assert rows.vectors.shape == (6, 32) and np.isfinite(rows.vectors).all()
    assert store.read(model, points="decoder.L1.ffn").vectors.shape == (6, 64)
    run = store.runs(model).row(0, named=True)
    params = json.loads(run["params"]) if isinstance(run["params"], str) else run["params"]
    assert params["target_lang"] == "fra" and params["decoder_target"] == "translation"
    n = store.count_rows()
    again = _ingest(db, tiny_seamless_dir, manifest, *args)
    assert "0 rows written" in again and store.count_rows() == n


def test_whisper_transcription_sites(tmp_path, tiny_whisper_dir, manifest):
    db = str(tmp_path / "db")
    _ingest(db, tiny_whisper_dir, manifest, "--modalities", "speech", "--points",
            "decoder.L1,decoder.L1.cross_attn.v,speech.L2.ffn")
    store = Store.open(db)
    model = store.models()[0]
    assert set(store.points(model)["point"]) == {"decoder.L1", "decoder.L1.cross_attn.v", "speech.L2.ffn"}
    assert store.count_rows() == 9


@pytest.mark.parametrize("extra,message", [
    (("--points", "decoder.L1", "--target-lang", "deu"), "no deu text"),
    (("--sites", "ffn,nope"), "Unknown site kind"),
    (("--target-lang", "fra"), "needs decoder points"),
])
def test_bad_requests_leave_the_store_unchanged(tmp_path, tiny_seamless_dir, manifest, extra, message):
    db = str(tmp_path / "db")
    _ingest(db, tiny_seamless_dir, manifest, "--layers", "1", "--modalities", "text")
    store = Store.open(db)
    before = (store.count_rows(), store.runs().height)
    out = _ingest(db, tiny_seamless_dir, manifest, "--modalities", "text", *extra, code=1)
    assert message in out and "Traceback" not in out
    assert (store.count_rows(), store.runs().height) == before


def test_whisper_refuses_translation_before_any_store(tmp_path, tiny_whisper_dir, manifest):
    db = tmp_path / "db"
    out = _ingest(str(db), tiny_whisper_dir, manifest, "--modalities", "speech", "--points",
                  "decoder.L1", "--target-lang", "fra", code=1)
    assert "decodes transcriptions only" in out and not db.exists()


@pytest.mark.parametrize("extra,message", [
    (("--points", "decoder.L1.cross_attn.k"), "encoder-only"),
    (("--sites", "cross_attn.k"), "has no cross_attn.k site"),
])
def test_decoder_sites_on_an_encoder_only_family_are_refused(tmp_path, tiny_bert_dir, manifest, extra,
                                                              message):
    db = tmp_path / "db"
    out = _ingest(str(db), tiny_bert_dir, manifest, "--modalities", "text", *extra, code=1)
    assert message in out and "Traceback" not in out
    assert not db.exists()


def test_points_and_adapters_list_sites(tiny_whisper_dir):
    out = cli("points", "--model", tiny_whisper_dir, "--format", "csv").output
    lines = out.splitlines()
    assert lines[0] == "modality,point,kind,layer,width,default"
    assert "speech,speech.L1,hidden,1,32,true" in lines
    assert "speech,speech.L2.ffn,site,2,64,false" in lines
    assert "speech,decoder.L1.cross_attn.k,site,1,32,false" in lines
    assert "speech,decoder.L1,decoder,1,32,false" in lines
    table = cli("adapters", "--format", "csv").output
    assert any(line.startswith("whisper,") and "ffn" in line and ",true," in line for line in table.splitlines())


@pytest.mark.parametrize("width", [2048, 8192])
def test_wide_site_vectors_round_trip_in_float16(tmp_path, width):
    """SeamlessM4T v2's text FFN sites are 8192 wide: the registry and the tables take them."""
    from _store_data import activation_rows

    store = Store.open(tmp_path / "db")
    vectors = np.random.default_rng(0).standard_normal((3, width)).astype(np.float32)
    store.register_points("m", [{"point": "decoder.L1.ffn", "modality": "text", "layer": 1,
                                 "width": width, "vector_dtype": "float16"}])
    store.write_activations("m", width, activation_rows("m", "decoder.L1.ffn", "text", "eng", [1, 2, 3],
                                                        vectors), vector_dtype="float16", replace=False)
    back = store.read("m", points="decoder.L1.ffn")
    np.testing.assert_allclose(back.vectors, vectors, atol=2e-3)  # float16 round-off
