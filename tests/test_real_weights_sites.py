"""Sites and teacher-forced decoding on the REAL Whisper base (skipped where its weights or
espeak-ng are not installed): widths, and a finite decoder state for an English transcription
that equals transformers' own decoder hidden states, pooled."""

import numpy as np
import pytest
import torch

from _models import real_whisper_base
from actstore.ingest.adapters import load_adapter
from actstore.ingest.items import Item
from actstore.ingest.sources.espeak import EspeakSynthesizer

SENTENCE = "Yesterday we walked to the old market and bought fresh bread."


@pytest.fixture(scope="module")
def adapter():
    return load_adapter(str(real_whisper_base(speech=False)))


@pytest.fixture(scope="module")
def item():
    syn = EspeakSynthesizer()
    if not syn.available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return Item(0, "eng", "speech", "s0", "devtest", audio=syn.synthesize(SENTENCE, "en"),
                target=SENTENCE, target_lang="eng")


def test_site_widths(adapter):
    assert adapter.width("speech.L3.ffn") == 2048 and adapter.width("decoder.L6.ffn") == 2048
    assert adapter.width("decoder.L5.cross_attn.v") == 512 == adapter.width("speech.L1.self_attn.k")
    assert len([p for p in adapter.optional_points("speech") if p.startswith("decoder.L")]) == 6 * 8


def test_decoding_an_english_transcription(adapter, item):
    from transformers import WhisperForConditionalGeneration

    from actstore.ingest.adapters.whisper.decoding import target_ids

    points = ["speech.L6.ffn", "decoder.L6", "decoder.L6.ffn", "decoder.L6.cross_attn.k"]
    out = adapter.encode([item], points)
    assert out["speech.L6.ffn"].vectors.shape == (1, 2048)
    assert out["decoder.L6.cross_attn.k"].vectors.shape == (1, 512)
    assert all(np.isfinite(out[p].vectors).all() for p in points)
    ids, _ = target_ids(adapter.tokenizer, [item], "cpu")
    assert out["decoder.L6"].n_frames[0] == ids.shape[1] > 10  # prefix + the sentence's tokens
    model = WhisperForConditionalGeneration.from_pretrained(adapter.path).eval()
    feats = adapter.feature_extractor(item.audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        hs = model(input_features=feats, decoder_input_ids=ids, output_hidden_states=True).decoder_hidden_states
    np.testing.assert_allclose(out["decoder.L6"].vectors[0], hs[-1][0].mean(0).numpy(), atol=1e-4)
    # the target is in the format Whisper was trained on: teacher-forced, it predicts most of the
    # sentence's next tokens (0.71 measured on espeak-ng's voice; a wrong prefix gives ~0)
    with torch.no_grad():
        logits = model(input_features=feats, decoder_input_ids=ids).logits
    assert (logits[0, 3:-1].argmax(-1) == ids[0, 4:]).float().mean() > 0.5
