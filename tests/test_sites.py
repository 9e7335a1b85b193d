"""Neuron sites and teacher-forced decoding on tiny random Whisper and SeamlessM4T v2:
names and widths, padded batch == items alone, known answers (FFN activation, cross-attention
key = k_proj of the encoder output), decoder states == transformers' own hidden states."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from _models import assert_batch_equals_single, speech_items, text_items
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.adapters.common.tiny import TINY_HIDDEN

TARGETS = ["Hello world.", "A somewhat longer target sentence, with a comma."]


@pytest.fixture(scope="module")
def whisper(tiny_whisper_dir):
    return load_adapter(str(tiny_whisper_dir))


@pytest.fixture(scope="module")
def seamless(tiny_seamless_dir):
    return load_adapter(str(tiny_seamless_dir))


def _with_targets(items, target_lang=None):
    return [dataclasses.replace(it, target=TARGETS[i % 2], target_lang=target_lang or it.lang)
            for i, it in enumerate(items)]


def test_whisper_site_names_and_widths(whisper):
    opt = whisper.optional_points("speech")
    assert opt[:4] == ["speech.L1.ffn", "speech.L1.self_attn.q", "speech.L1.self_attn.k", "speech.L1.self_attn.v"]
    assert "decoder.L1.cross_attn.v" in opt and "decoder.L1" in opt and "decoder.embed" in opt
    assert whisper.width("speech.L2.ffn") == 64 and whisper.width("decoder.L1.ffn") == 64
    assert whisper.width("decoder.L1.cross_attn.k") == TINY_HIDDEN == whisper.width("decoder.L1")
    assert whisper.layer_of("decoder.L1.cross_attn.k") == 1
    assert whisper.points("speech") == ["speech.embed", "speech.L1", "speech.L2"]  # unchanged
    assert whisper.decoder is None  # loaded on the first decoder request only


def test_seamless_site_names_and_widths(seamless):
    speech, text = seamless.optional_points("speech"), seamless.optional_points("text")
    assert speech[:5] == ["speech.L1.ffn1", "speech.L1.ffn2", "speech.L1.self_attn.q",
                          "speech.L1.self_attn.k", "speech.L1.self_attn.v"]
    assert text[:4] == ["text.L1.ffn", "text.L1.self_attn.q", "text.L1.self_attn.k", "text.L1.self_attn.v"]
    shared = [p for p in speech if p.startswith("decoder.")]
    assert shared == [p for p in text if p.startswith("decoder.")]  # one decoder, two conditionings
    assert {seamless.width(p) for p in ("speech.L4.ffn2", "text.L4.ffn", "decoder.L1.ffn")} == {64}
    assert seamless.width("decoder.L1.cross_attn.v") == TINY_HIDDEN


def test_whisper_batch_equals_single_with_sites_and_decoding(whisper):
    items = _with_targets(speech_items([1000, 8000, 15999]))
    points = ["speech.L1", "speech.L2.ffn", "speech.L1.self_attn.k"] + [
        p for p in whisper.optional_points("speech") if p.startswith("decoder.")]
    out = assert_batch_equals_single(whisper, items, points)
    n_target = out["decoder.L1"].n_frames
    assert n_target[0] < n_target[1]  # pooled over each item's own target tokens
    np.testing.assert_array_equal(out["decoder.L1.cross_attn.k"].n_frames, out["speech.L1"].n_frames)


@pytest.mark.parametrize("modality", ["speech", "text"])
def test_seamless_batch_equals_single_with_sites_and_decoding(seamless, modality):
    items = (speech_items([4000, 9000, 16000]) if modality == "speech" else
             text_items([("eng", "Hi."), ("fra", "Une phrase un peu plus longue."), ("eng", "Three")]))
    items = _with_targets(items, "fra")
    sites = [p for p in seamless.optional_points(modality) if ".L2." in p and not p.startswith("decoder")]
    points = sites + [p for p in seamless.optional_points(modality) if p.startswith("decoder.")]
    assert_batch_equals_single(seamless, items, points)


def _capture_one(adapter, module, item, point):
    """The first input of `module` while the adapter encodes `item` at `point`."""
    with Capture() as cap:
        cap.input_of(module, "x")
        pooled = adapter.encode([item], [point])[point].vectors[0]
        return cap.tensors["x"], pooled


def test_ffn_site_known_answer(whisper):
    """speech.L1.ffn == mean over audio frames of GELU(fc1(LayerNorm(layer input)))."""
    (item,) = speech_items([8000])
    layer = whisper.encoder.layers[0]
    x, pooled = _capture_one(whisper, layer, item, "speech.L1.ffn")
    with torch.no_grad():
        h = x + layer.self_attn(layer.self_attn_layer_norm(x))[0]
        act = layer.activation_fn(layer.fc1(layer.final_layer_norm(h)))
    n = 25  # ceil(8000 / 320)
    np.testing.assert_allclose(pooled, act[0, :n].mean(0).numpy(), atol=1e-5)


def test_cross_attention_key_is_k_proj_of_the_encoder_output(seamless):
    (item,) = _with_targets(text_items([("eng", "The encoder output is the source.")]))
    dec_attn = None
    out = seamless.encode([item], ["text.L4", "decoder.L1.cross_attn.k"])
    dec_attn = seamless.decoder.layers[0].cross_attention
    ids, mask = seamless._token_ids([item])
    with torch.no_grad():
        enc = seamless.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = dec_attn.k_proj(enc)[0].mean(0).numpy()
    # text.L4 is the encoder output (after the final LayerNorm): the same tensor k_proj reads
    np.testing.assert_allclose(out["text.L4"].vectors[0], enc[0].mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["decoder.L1.cross_attn.k"].vectors[0], expected, atol=1e-5)


def test_whisper_decoder_states_match_transformers(whisper, tiny_whisper_dir):
    from transformers import WhisperForConditionalGeneration

    from actstore.ingest.adapters.whisper.decoding import target_ids

    items = _with_targets(speech_items([3000, 12000]))
    points = ["decoder.embed", "decoder.L1"]
    ours = whisper.encode(items, points)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).eval()
    fe = whisper.feature_extractor
    for b, it in enumerate(items):
        feats = fe(it.audio, sampling_rate=16000, return_tensors="pt")["input_features"]
        ids, _ = target_ids(whisper.tokenizer, [it], "cpu")
        with torch.no_grad():
            hs = model(input_features=feats, decoder_input_ids=ids,
                       output_hidden_states=True).decoder_hidden_states
        for i, p in enumerate(points):
            np.testing.assert_allclose(ours[p].vectors[b], hs[i][0].mean(0).numpy(), atol=1e-5)


def test_seamless_decoder_states_match_transformers(seamless, tiny_seamless_dir):
    """Text-conditioned: transformers' SeamlessM4Tv2ForTextToText with the same decoder input."""
    from transformers import SeamlessM4Tv2ForTextToText

    from actstore.ingest.adapters.seamless_m4t_v2.decoding import target_ids

    items = _with_targets(text_items([("eng", "A short one."), ("fra", "Une phrase plus longue ici.")]), "eng")
    ours = seamless.encode(items, ["decoder.L1"])
    model = SeamlessM4Tv2ForTextToText.from_pretrained(tiny_seamless_dir).eval()
    for b, it in enumerate(items):
        src, src_mask = seamless._token_ids([it])
        ids, _ = target_ids(seamless.tokenizer, [it], seamless.config.decoder_start_token_id,
                            seamless._lang_code, "cpu")
        with torch.no_grad():
            hs = model(input_ids=src, attention_mask=src_mask, decoder_input_ids=ids,
                       output_hidden_states=True).decoder_hidden_states
        np.testing.assert_allclose(ours["decoder.L1"].vectors[b], hs[-1][0].mean(0).numpy(), atol=1e-5)


def test_seamless_speech_conditioned_decoder_matches_transformers(seamless, tiny_seamless_dir):
    """Speech-conditioned: SeamlessM4Tv2ForSpeechToText on the same clip (alone, even length)."""
    from transformers import SeamlessM4Tv2ForSpeechToText

    from actstore.ingest.adapters.seamless_m4t_v2.decoding import target_ids

    (item,) = _with_targets(speech_items([16000]), "eng")
    ours = seamless.encode([item], ["decoder.L1", "decoder.L1.cross_attn.v"])
    model = SeamlessM4Tv2ForSpeechToText.from_pretrained(tiny_seamless_dir).eval()
    feats, mask = seamless._speech_inputs([item])
    ids, _ = target_ids(seamless.tokenizer, [item], seamless.config.decoder_start_token_id,
                        seamless._lang_code, "cpu")
    with torch.no_grad():
        out = model(input_features=feats, attention_mask=mask, decoder_input_ids=ids,
                    output_hidden_states=True)
    np.testing.assert_allclose(ours["decoder.L1"].vectors[0], out.decoder_hidden_states[-1][0].mean(0).numpy(),
                               atol=1e-5)
    v = model.text_decoder.layers[0].cross_attention.v_proj(out.encoder_last_hidden_state)
    np.testing.assert_allclose(ours["decoder.L1.cross_attn.v"].vectors[0], v[0].mean(0).detach().numpy(),
                               atol=1e-5)
