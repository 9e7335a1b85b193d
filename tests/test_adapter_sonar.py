"""SONAR adapters on tiny random models in the published formats: points, padding, masks,
languages, recognition, fairseq2-cache lookup, dtype, errors, and the CLI end to end."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from _cli import cli
from _models import assert_batch_equals_single, flores_lines, small_corpus, speech_items, text_items
from actstore.errors import DataSourceError, UnsupportedLanguageError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.common.fairseq2_assets import SONAR_URL, asset_dir
from actstore.ingest.adapters.sonar.fbank import kaldi_fbank
from actstore.ingest.adapters.registry import adapter_for
from actstore.ingest.adapters.sonar.speech import SonarSpeechAdapter
from actstore.ingest.adapters.sonar.text import MAX_SEQ_LEN, SonarTextAdapter
from actstore.ingest.model_paths import ModelSource
from actstore.ingest.adapters.sonar.tiny import (NON_ENGLISH_POOLER_LAYERS, POOLER_LAYERS, SPEECH_LAYERS,
                                        TEXT_LAYERS, TINY_D, build_tiny_sonar_speech,
                                        build_tiny_sonar_text)

LENGTHS = [4000, 16000, 23456, 9001]  # odd and even fbank frame counts


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    return build_tiny_sonar_text(tmp_path_factory.mktemp("sonar_text"), corpus_texts=small_corpus(),
                                 vocab_size=300)


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory):
    return build_tiny_sonar_speech(tmp_path_factory.mktemp("sonar_speech"))


@pytest.fixture(scope="module")
def text(text_dir):
    return load_adapter(str(text_dir))


@pytest.fixture(scope="module")
def speech(speech_dir):
    return load_adapter(str(speech_dir))


# -- text -------------------------------------------------------------------------------------

def test_text_points_info_and_study_layers(text, text_dir):
    assert isinstance(text, SonarTextAdapter)
    pts = text.points("text")
    assert pts == ["text.embed"] + [f"text.L{i}" for i in range(1, TEXT_LAYERS + 1)] + ["text.pooled"]
    assert [text.layer_of(p) for p in pts] == list(range(TEXT_LAYERS + 1)) + [None]
    assert all(text.width(p) == TINY_D for p in pts)
    assert SonarTextAdapter.study_layers == (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 23, 24)
    info = text.info
    assert info.random_init is True and info.adapter == "sonar-text" and info.name == text_dir.name


def test_text_batch_equals_single_and_masks_count_every_token(text):
    pairs = [("eng", flores_lines("eng_Latn", 1)[0]), ("arb", flores_lines("arb_Arab", 2)[1]),
             ("cmn", flores_lines("zho_Hans", 1)[0]), ("amh", "ሰላም")]
    items = text_items(pairs)
    batch = assert_batch_equals_single(text, items, text.points("text"))
    ids = text.token_ids(items)
    for i, row in enumerate(ids):
        assert row[-1] == text.tokenizer.eos_id  # [__lang__] pieces </s>, all pooled
        assert batch["text.pooled"].n_frames[i] == batch["text.L1"].n_frames[i] == len(row)
    assert ids[2][0] == text.tokenizer.lang_id("zho_Hans")  # cmn -> zho_Hans via the catalogue


def test_text_language_token_per_item_and_unsupported_language(text):
    sentence = "Bonjour tout le monde."
    out = text.encode(text_items([("eng", sentence), ("fra", sentence), ("fra_Latn", sentence)]),
                      ["text.L1"])["text.L1"].vectors
    assert np.abs(out[0] - out[1]).max() > 1e-4
    np.testing.assert_array_equal(out[1], out[2])
    assert text.supports_language("fra") and not text.supports_language("xyz")
    assert not text.supports_language("fra", "speech")
    with pytest.raises(UnsupportedLanguageError, match="no language token for 'xyz'"):
        text.encode(text_items([("xyz", sentence)]), ["text.L1"])


def test_text_longer_than_max_seq_len_is_truncated_with_a_warning(text, caplog):
    assert text.max_tokens == MAX_SEQ_LEN == 514  # SONAR predict(): x[:pos_encoder.max_seq_len]
    long = " ".join(flores_lines("eng_Latn", 40))
    with caplog.at_level(logging.WARNING):
        out = text.encode(text_items([("eng", long)]), ["text.pooled"])
    assert out["text.pooled"].n_frames[0] == MAX_SEQ_LEN
    assert "keeps the first 514" in caplog.text


def test_text_bfloat16_loads_without_float32_parameters(text_dir, text):
    bf = load_adapter(str(text_dir), dtype="bfloat16")
    assert {p.dtype for p in bf.encoder.parameters()} == {torch.bfloat16}
    items = text_items([("eng", "A short sentence for the dtype check.")])
    a = bf.encode(items, ["text.pooled"])["text.pooled"].vectors
    b = text.encode(items, ["text.pooled"])["text.pooled"].vectors
    assert a.dtype == np.float32 and np.abs(a - b).max() < 0.1


# -- speech -----------------------------------------------------------------------------------

def test_speech_bfloat16_model_pools_in_float32(speech_dir, speech):
    bf = load_adapter(str(speech_dir), dtype="bfloat16")
    assert {p.dtype for p in bf._model.parameters()} == {torch.bfloat16}
    items = speech_items([16000, 9000])
    a = bf.encode(items, ["speech.L2", "speech.pooled"])
    b = speech.encode(items, ["speech.L2", "speech.pooled"])
    for p in a:
        assert a[p].vectors.dtype == np.float32 and np.abs(a[p].vectors - b[p].vectors).max() < 0.1


def test_speech_points_languages_and_pooler_depths(speech):
    assert isinstance(speech, SonarSpeechAdapter)
    pts = speech.points("speech")
    assert pts == (["speech.embed"] + [f"speech.L{i}" for i in range(1, SPEECH_LAYERS + 1)]
                   + ["speech.final_norm", "speech.pooled"])
    assert speech.languages == ["eng", "fra"]
    speech.encode(speech_items([8000], lang="fra"), ["speech.pooled"])
    speech.encode(speech_items([8000], lang="eng"), ["speech.pooled"])
    assert speech.info.extra["pooler_layers"] == {"eng": POOLER_LAYERS["eng"],
                                                  "fra": NON_ENGLISH_POOLER_LAYERS}
    assert speech.info.random_init is True


def test_speech_batch_equals_single_items_at_every_point(speech):
    items = speech_items(LENGTHS)
    batch = assert_batch_equals_single(speech, items, speech.points("speech"))
    # Kaldi frames of 25 ms at a 10 ms hop (snip_edges), then pairs stacked (odd one dropped)
    frames = np.array([(1 + (n - 400) // 160) // 2 for n in LENGTHS])
    np.testing.assert_array_equal(batch["speech.L1"].n_frames, frames)
    np.testing.assert_array_equal(batch["speech.final_norm"].n_frames, frames)
    np.testing.assert_array_equal(batch["speech.pooled"].n_frames, np.ones(len(items)))


def test_speech_mixed_language_batch_uses_each_languages_checkpoint(speech):
    items = speech_items([9000, 12000, 7000])
    items[1] = replace(items[1], lang="fra")
    batch = assert_batch_equals_single(speech, items, ["speech.L2", "speech.pooled"])
    eng_as_fra = speech.encode([replace(items[0], lang="fra")], ["speech.pooled"])["speech.pooled"].vectors[0]
    assert np.abs(eng_as_fra - batch["speech.pooled"].vectors[0]).max() > 1e-4


def test_speech_unsupported_language_short_audio_and_other_rates(speech):
    assert speech.supports_language("fra") and not speech.supports_language("deu")
    with pytest.raises(UnsupportedLanguageError, match="No SONAR speech checkpoint for 'deu'"):
        speech.encode(speech_items([8000], lang="deu"), ["speech.pooled"])
    with pytest.raises(DataSourceError, match="shorter than 560 samples"):
        speech.encode(speech_items([500]), ["speech.pooled"])
    with pytest.raises(DataSourceError, match="16 kHz"):
        kaldi_fbank(np.zeros(8000, np.float32), 8000)


def test_eval_mode_is_deterministic(speech, text):
    items = speech_items([12000, 7000])
    a = speech.encode(items, speech.points("speech"))
    b = speech.encode(items, speech.points("speech"))
    for p in a:
        np.testing.assert_array_equal(a[p].vectors, b[p].vectors)
    assert not any(m.training for m in speech._model.modules())
    assert not any(m.training for m in text.encoder.modules())


# -- recognition and fairseq2's cache ---------------------------------------------------------

def test_recognition_by_layout(text_dir, speech_dir, tmp_path):
    assert adapter_for(ModelSource("x", text_dir, "t")) is SonarTextAdapter
    assert adapter_for(ModelSource("x", speech_dir, "s")) is SonarSpeechAdapter
    assert adapter_for(ModelSource("x", speech_dir / "spenc.eng.pt", "s")) is SonarSpeechAdapter
    renamed = tmp_path / "my_encoder.pt"  # recognised by the key names inside the zip, not the name
    shutil.copy(text_dir / "sonar_text_encoder.pt", renamed)
    assert SonarTextAdapter.recognises(ModelSource("x", renamed, "t"))
    assert not SonarSpeechAdapter.recognises(ModelSource("x", renamed, "t"))
    assert not SonarTextAdapter.recognises(ModelSource("x", speech_dir, "s"))


def test_one_directory_with_both_encoders_is_one_sonar_model(text_dir, speech_dir, tmp_path):
    from actstore.ingest.adapters.sonar.adapter import SonarAdapter

    for f in list(text_dir.iterdir()) + list(speech_dir.iterdir()):
        shutil.copy(f, tmp_path / f.name)
    both = load_adapter(str(tmp_path))
    assert isinstance(both, SonarAdapter) and both.modalities == ("speech", "text")
    assert both.points("text")[-1] == "text.pooled" and both.points("speech")[-1] == "speech.pooled"
    assert both.layer_of("speech.L2") == 2 and both.width("text.L1") == TINY_D
    assert both.supports_language("fra", "speech") and not both.supports_language("deu", "speech")
    assert both.supports_language("deu", "text")
    t = both.encode(text_items([("eng", "Hello there.")]), ["text.pooled"])["text.pooled"].vectors
    s = both.encode(speech_items([9000]), ["speech.pooled"])["speech.pooled"].vectors
    assert t.shape == s.shape == (1, TINY_D)
    info = both.info
    assert info.adapter == "sonar" and info.random_init and set(info.extra) == {"family", "text", "speech"}


def test_locate_in_fairseq2_asset_cache(text_dir, speech_dir, tmp_path, monkeypatch):
    cache = tmp_path / "fs2cache"
    for url, src in [(f"{SONAR_URL}/sonar_text_encoder.pt", text_dir / "sonar_text_encoder.pt"),
                     (f"{SONAR_URL}/sentencepiece.source.256000.model",
                      text_dir / "sentencepiece.source.model"),
                     (f"{SONAR_URL}/spenc.v3ap.fra.pt", speech_dir / "spenc.v3ap.fra.pt")]:
        folder = asset_dir(url, cache)
        folder.mkdir(parents=True)
        shutil.copy(src, folder / url.rsplit("/", 1)[1])
    monkeypatch.setenv("FAIRSEQ2_CACHE_DIR", str(cache))
    monkeypatch.setenv("FAIRSEQ2_USER_ASSET_DIR", str(tmp_path / "no_cards"))
    text = load_adapter("text_sonar_basic_encoder")
    assert text.info.extra["checkpoint"].startswith(str(cache)) and text.model_name == "text_sonar_basic_encoder"
    speech = load_adapter("sonar_speech_encoder_fra")
    assert speech.languages == ["fra"] and len(speech._model.pooler.layers) == NON_ENGLISH_POOLER_LAYERS
    assert SonarSpeechAdapter.locate("sonar_speech_encoder_deu", None) is None
    both = load_adapter("sonar")  # the text card and every cached speech encoder
    assert both.speech.languages == ["fra"] and both.text.points("text")[-1] == "text.pooled"


# -- CLI --------------------------------------------------------------------------------------

def test_cli_make_tiny_and_ingest_text_and_speech(tmp_path):
    from actstore.store import Store

    db = tmp_path / "store.lance"
    cli("make-tiny-model", "--kind", "sonar-text", "--out", tmp_path / "sonar-text")
    cli("ingest", "--db", db, "--model", tmp_path / "sonar-text", "--langs", "eng,fra", "--limit", 3,
         "--modalities", "text", "--quiet")
    store = Store.open(db, create=False)
    rows = store.read("sonar-text", points="text.pooled")
    assert rows.vectors.shape == (6, TINY_D) and np.isfinite(rows.vectors).all()
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed: no synthetic speech")
    cli("make-tiny-model", "--kind", "sonar", "--out", tmp_path / "sonar")  # text + speech
    out = cli("ingest", "--db", db, "--model", tmp_path / "sonar", "--langs", "eng,fra,deu",
               "--limit", 1, "--layers", "1,4", "--points", "speech.pooled,text.pooled",
               "--cache-dir", tmp_path / "espeak")
    assert "deu/speech" in out.output  # no German speech checkpoint: reported and skipped
    speech = store.read("sonar", points="speech.pooled")
    assert speech.vectors.shape == (2, TINY_D)
    assert store.read("sonar", points="text.pooled").vectors.shape == (3, TINY_D)
    assert store.runs()["adapter"].to_list()[-1] == "sonar"

class _TrainingConfig:  # stands for fairseq1's argparse/omegaconf training state
    def __init__(self):
        self.lr = [1e-4]


def test_checkpoint_with_foreign_training_state_loads_model_only(speech_dir, speech, tmp_path):
    state = torch.load(speech_dir / "spenc.eng.pt", weights_only=True)
    state.update(cfg=_TrainingConfig(), optimizer_history=[{"num_updates": np.int64(3)}])
    torch.save(state, tmp_path / "spenc.eng.pt")
    with pytest.raises(Exception):  # the restricted unpickler refuses it ...
        torch.load(tmp_path / "spenc.eng.pt", weights_only=True)
    other = load_adapter(str(tmp_path))  # ... the adapter reads ["model"] with inert stubs
    items = speech_items([9000])
    np.testing.assert_array_equal(other.encode(items, ["speech.pooled"])["speech.pooled"].vectors,
                                  speech.encode(items, ["speech.pooled"])["speech.pooled"].vectors)


def test_locate_a_user_asset_card(speech_dir, tmp_path, monkeypatch):
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "mine.yaml").write_text(
        "name: my_speech_encoder_eng\nbase: sonar_speech_encoder_base\nmodel_arch: english\n"
        f"checkpoint: file://{speech_dir / 'spenc.eng.pt'}\nactstore_random_init: true\n")
    monkeypatch.setenv("FAIRSEQ2_USER_ASSET_DIR", str(cards))
    found = load_adapter("my_speech_encoder_eng")
    assert isinstance(found, SonarSpeechAdapter) and found.languages == ["eng"]
    assert found.info.random_init and found.source.source == "fairseq2 asset card"
