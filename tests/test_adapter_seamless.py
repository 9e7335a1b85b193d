"""SeamlessM4T v2 adapter on a tiny random model: points, padding, masks, references, errors."""

import numpy as np
import pytest
import torch

from _models import assert_batch_equals_single, flores_lines, speech_items, text_items
from actstore.errors import ActstoreError, DataSourceError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.seamless_m4t_v2.adapter import SeamlessM4Tv2Adapter, adaptor_lengths
from actstore.ingest.items import Item
from actstore.ingest.adapters.common.tiny import TINY_HIDDEN
from actstore.ingest.adapters.seamless_m4t_v2.tiny import SEAMLESS_SPEECH_LAYERS, SEAMLESS_TEXT_LAYERS

LENGTHS = [4000, 16000, 23456, 9001]  # 0.25 s .. 1.5 s, odd and even frame counts


@pytest.fixture(scope="module")
def adapter(tiny_seamless_dir):
    return load_adapter(str(tiny_seamless_dir))


@pytest.fixture(scope="module")
def full_model(tiny_seamless_dir):
    from transformers import SeamlessM4Tv2Model

    return SeamlessM4Tv2Model.from_pretrained(tiny_seamless_dir).eval()


def test_point_names_widths_and_layers(adapter, tiny_seamless_dir):
    speech = adapter.points("speech")
    assert speech == (["speech.embed"] + [f"speech.L{i}" for i in range(1, SEAMLESS_SPEECH_LAYERS + 1)]
                      + ["speech.adaptor"])
    assert adapter.points("text") == ["text.embed"] + [f"text.L{i}" for i in
                                                       range(1, SEAMLESS_TEXT_LAYERS + 1)]
    assert all(adapter.width(p) == TINY_HIDDEN for p in speech + adapter.points("text"))
    assert [adapter.layer_of(p) for p in speech] == [0, 1, 2, 3, 4, None]
    info = adapter.info
    assert info.random_init is True and info.adapter == "seamless-m4t-v2"
    assert info.name == tiny_seamless_dir.name and info.extra["dtype"] == "float32"


def test_only_the_encoders_are_loaded(adapter, full_model):
    def n_params(m):
        return sum(p.numel() for p in m.parameters())

    loaded = [m for m in vars(adapter).values() if isinstance(m, torch.nn.Module)]
    assert sorted(type(m).__name__ for m in loaded) == ["SeamlessM4Tv2Encoder",
                                                        "SeamlessM4Tv2SpeechEncoder"]
    assert sum(n_params(m) for m in loaded) == (n_params(full_model.speech_encoder)
                                                + n_params(full_model.text_encoder))


def test_speech_batch_equals_single_items_at_every_point(adapter):
    items = speech_items(LENGTHS)
    batch = assert_batch_equals_single(adapter, items, adapter.points("speech"))
    for p in adapter.points("speech"):
        assert batch[p].vectors.shape == (len(items), TINY_HIDDEN)
        assert batch[p].vectors.dtype == np.float32


def test_speech_masks_follow_the_length_formulas(adapter):
    items = speech_items(LENGTHS)
    out = adapter.encode(items, ["speech.L2", "speech.adaptor"])
    # Kaldi fbank: 25 ms window, 10 ms hop -> 1 + (n - 400) // 160 frames; stride 2 stacks pairs.
    frames = np.array([(1 + (n - 400) // 160) // 2 for n in LENGTHS])
    np.testing.assert_array_equal(out["speech.L2"].n_frames, frames)
    # adaptor (kernel 8, stride 8, padding 4): floor(L / 8) + 1
    np.testing.assert_array_equal(out["speech.adaptor"].n_frames, frames // 8 + 1)
    np.testing.assert_array_equal(adaptor_lengths(torch.tensor(frames), 8, 8).numpy(), frames // 8 + 1)


def test_speech_points_match_transformers_on_a_single_item(adapter, full_model):
    (item,) = speech_items([16000])  # 98 fbank frames -> 49 model frames, no padding at all
    fe = adapter.feature_extractor
    feats = fe(item.audio, sampling_rate=16000, return_tensors="pt")
    assert feats["attention_mask"].all()
    got = adapter.encode([item], ["speech.embed", f"speech.L{SEAMLESS_SPEECH_LAYERS}",
                                  "speech.adaptor"])
    enc = full_model.speech_encoder
    with torch.no_grad():
        embed = enc.feature_projection(feats["input_features"])
        conformer = enc.encoder(embed, attention_mask=feats["attention_mask"])
        final = enc(**feats).last_hidden_state
    np.testing.assert_allclose(got["speech.embed"].vectors[0], embed[0].mean(0), atol=1e-5)
    np.testing.assert_allclose(got[f"speech.L{SEAMLESS_SPEECH_LAYERS}"].vectors[0],
                               conformer[0].mean(0), atol=1e-5)
    np.testing.assert_allclose(got["speech.adaptor"].vectors[0], final[0].mean(0), atol=1e-5)


def test_adaptor_padding_is_zeroed(adapter, monkeypatch):
    """Without the pre-hook the padded batch differs: the test above would catch a regression."""
    import actstore.ingest.adapters.seamless_m4t_v2.adapter as mod

    monkeypatch.setattr(mod, "_zero_past", lambda lengths: (lambda module, args: None))
    items = speech_items([8000, 23456])
    batch = adapter.encode(items, ["speech.adaptor"])["speech.adaptor"].vectors
    alone = adapter.encode(items[:1], ["speech.adaptor"])["speech.adaptor"].vectors
    assert np.abs(batch[0] - alone[0]).max() > 1e-3


def test_text_batch_equals_single_items_and_masks_count_tokens(adapter):
    pairs = [("eng", flores_lines("eng_Latn", 1)[0]), ("arb", flores_lines("arb_Arab", 2)[1]),
             ("cmn", flores_lines("zho_Hans", 1)[0]), ("amh", "ሰላም")]
    items = text_items(pairs)
    batch = assert_batch_equals_single(adapter, items, adapter.points("text"))
    tok = adapter.tokenizer
    for i, (lang, text) in enumerate(pairs):
        ids = tok(text, src_lang=lang)["input_ids"]
        # language token + sentence tokens + </s>, all pooled
        assert ids[0] == tok.convert_tokens_to_ids(f"__{lang}__") and ids[-1] == tok.eos_token_id
        assert batch["text.L1"].n_frames[i] == len(ids)


def test_text_points_match_transformers(adapter, full_model):
    (item,) = text_items([("fra", flores_lines("fra_Latn", 1)[0])])
    ids = adapter.tokenizer(item.text, src_lang="fra", return_tensors="pt")
    got = adapter.encode([item], ["text.embed", f"text.L{SEAMLESS_TEXT_LAYERS}"])
    enc = full_model.text_encoder
    with torch.no_grad():
        embed = enc.embed_tokens(ids["input_ids"]) + enc.embed_positions(ids["input_ids"])
        last = enc(**ids).last_hidden_state
    np.testing.assert_allclose(got["text.embed"].vectors[0], embed[0].mean(0), atol=1e-5)
    np.testing.assert_allclose(got[f"text.L{SEAMLESS_TEXT_LAYERS}"].vectors[0], last[0].mean(0),
                               atol=1e-5)


def test_language_token_is_set_per_item(adapter):
    text = "Bonjour tout le monde."
    out = adapter.encode(text_items([("eng", text), ("fra", text), ("zho", text), ("cmn", text)]),
                         ["text.L1"])["text.L1"].vectors
    assert np.abs(out[0] - out[1]).max() > 1e-4          # different language token
    np.testing.assert_array_equal(out[2], out[3])         # zho is Seamless' cmn
    with pytest.raises(ActstoreError, match="no language token __xyz__"):
        adapter.encode(text_items([("xyz", text)]), ["text.L1"])


def test_scripts_tokenize_to_real_tokens(adapter):
    tok = adapter.tokenizer
    for code, lang in [("arb_Arab", "arb"), ("hin_Deva", "hin"), ("zho_Hans", "cmn"),
                       ("amh_Ethi", "amh")]:
        ids = tok(flores_lines(code, 1)[0], src_lang=lang)["input_ids"]
        assert tok.unk_token_id not in ids, code


def test_eval_mode_is_deterministic(adapter):
    items = speech_items([12000, 7000])
    a = adapter.encode(items, adapter.points("speech"))
    b = adapter.encode(items, adapter.points("speech"))
    for p in a:
        np.testing.assert_array_equal(a[p].vectors, b[p].vectors)
    assert not adapter.speech_encoder.training and not adapter.text_encoder.training


def test_select_points(adapter):
    assert adapter.select_points("speech", layers=[1, 4]) == ["speech.L1", "speech.L4"]
    assert adapter.select_points("speech", layers=[0], names=["speech.adaptor"]) == [
        "speech.embed", "speech.adaptor"]
    assert adapter.select_points("text", layers=[3, 1]) == ["text.L1", "text.L3"]
    with pytest.raises(ActstoreError, match="Layer 9 does not exist"):
        adapter.select_points("speech", layers=[9])
    with pytest.raises(ActstoreError, match="Unknown point"):
        adapter.select_points("text", names=["text.L7"])


def test_early_stop_gives_the_same_vectors(adapter):
    items = speech_items([9000, 15000])
    full = adapter.encode(items, adapter.points("speech"))
    part = adapter.encode(items, ["speech.L1"])
    np.testing.assert_array_equal(full["speech.L1"].vectors, part["speech.L1"].vectors)


def test_bad_batches_are_refused(adapter):
    speech = speech_items([8000])
    text = text_items([("eng", "Hello.")])
    with pytest.raises(ActstoreError, match="one modality"):
        adapter.encode(speech + text, ["speech.L1"])
    with pytest.raises(ActstoreError, match="Unknown speech point"):
        adapter.encode(speech, ["text.L1"])
    with pytest.raises(DataSourceError, match="eng/t0 is empty"):
        adapter.encode(text_items([("eng", "  ")]), ["text.L1"])
    with pytest.raises(DataSourceError, match="shorter than 560 samples"):
        adapter.encode(speech_items([300]), ["speech.L1"])
    bad = Item(0, "eng", "speech", "nan", "devtest", audio=np.full(8000, np.nan, np.float32))
    with pytest.raises(DataSourceError, match="NaN"):
        adapter.encode([bad], ["speech.L1"])


@pytest.mark.bf16  # skipped where a bf16 matmul would kill pytest (tests/conftest.py)
def test_bfloat16_model_pools_in_float32(tiny_seamless_dir, adapter):
    half = load_adapter(str(tiny_seamless_dir), dtype="bfloat16")
    items = speech_items([16000])
    a = adapter.encode(items, ["speech.L2"])["speech.L2"].vectors
    b = half.encode(items, ["speech.L2"])["speech.L2"].vectors
    assert b.dtype == np.float32
    assert np.abs(a - b).max() < 0.1 * np.abs(a).max()
    assert half.info.extra["dtype"] == "bfloat16"


def test_matches_only_seamless_v2():
    from transformers import BertConfig, SeamlessM4Tv2Config

    assert SeamlessM4Tv2Adapter.matches(SeamlessM4Tv2Config())
    assert not SeamlessM4Tv2Adapter.matches(BertConfig())
