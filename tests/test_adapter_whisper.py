"""Whisper adapter on a tiny random model (1 s window): points, audio-frame masks, errors."""

import math
import shutil

import numpy as np
import pytest
import torch

from _models import assert_batch_equals_single, speech_items, text_items
from actstore.errors import ActstoreError, UnknownModelError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.whisper.adapter import whisper_frames
from actstore.ingest.adapters.common.tiny import TINY_HIDDEN
from actstore.ingest.adapters.whisper.tiny import WHISPER_LAYERS, WHISPER_MAX_SOURCE_POSITIONS


@pytest.fixture(scope="module")
def adapter(tiny_whisper_dir):
    return load_adapter(str(tiny_whisper_dir))


def test_points_and_info(adapter):
    pts = adapter.points("speech")
    assert pts == ["speech.embed"] + [f"speech.L{i}" for i in range(1, WHISPER_LAYERS + 1)]
    assert [adapter.width(p) for p in pts] == [TINY_HIDDEN] * len(pts)
    assert adapter.info.random_init is True and adapter.info.adapter == "whisper"
    with pytest.raises(ActstoreError, match="does not encode text"):
        adapter.points("text")


@pytest.mark.parametrize("samples,frames", [(1, 1), (320, 1), (321, 2), (16000, 50),
                                            (16001, 51), (480000, 1500), (10**7, 1500)])
def test_frame_formula_known_answers(samples, frames):
    assert whisper_frames(samples) == frames


@pytest.mark.parametrize("samples", [1000, 4321, 9600, 15999])
def test_frame_formula_matches_where_the_mel_features_hold_audio(adapter, samples):
    """Mel frame m (centre 160 m, window 400) is silence once 160 m - 200 >= samples."""
    fe = adapter.feature_extractor
    (item,) = speech_items([samples])
    mel = fe(item.audio, sampling_rate=16000, return_tensors="np")["input_features"][0]  # [80, 100]
    n = whisper_frames(samples, max_positions=WHISPER_MAX_SOURCE_POSITIONS)
    silence = mel[:, -1]
    assert np.allclose(mel[:, 2 * n + 2:], silence[:, None])        # beyond the pooled frames
    assert not np.allclose(mel[:, 2 * n - 2], silence)              # the last pooled frames hold audio


def test_batch_equals_single_items_and_masks(adapter):
    lengths = [1000, 8000, 15999, 4321]
    items = speech_items(lengths)
    out = assert_batch_equals_single(adapter, items, adapter.points("speech"))
    np.testing.assert_array_equal(out["speech.L1"].n_frames, [math.ceil(n / 320) for n in lengths])


def test_last_layer_matches_transformers(adapter, tiny_whisper_dir):
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper_dir).eval()
    (item,) = speech_items([6400])
    x = adapter.feature_extractor(item.audio, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        last = model.model.encoder(x["input_features"]).last_hidden_state[0]
    got = adapter.encode([item], [f"speech.L{WHISPER_LAYERS}"])[f"speech.L{WHISPER_LAYERS}"]
    assert got.n_frames[0] == 20
    np.testing.assert_allclose(got.vectors[0], last[:20].mean(0), atol=1e-5)


def test_long_audio_is_truncated_with_a_warning(adapter):
    items = speech_items([24000])
    with pytest.warns(UserWarning, match="Truncating 1 clip"):
        out = adapter.encode(items, ["speech.L1"])
    assert out["speech.L1"].n_frames[0] == WHISPER_MAX_SOURCE_POSITIONS


def test_deterministic_and_select_points(adapter):
    items = speech_items([5000, 12000])
    a = adapter.encode(items, adapter.points("speech"))
    b = adapter.encode(items, adapter.points("speech"))
    for p in a:
        np.testing.assert_array_equal(a[p].vectors, b[p].vectors)
    assert adapter.select_points("speech", layers=[0, 2]) == ["speech.embed", "speech.L2"]


def test_text_batch_is_refused(adapter):
    with pytest.raises(ActstoreError, match="does not encode text"):
        adapter.encode(text_items([("eng", "hello")]), ["speech.L1"])


def test_feature_extractor_window_must_match_encoder(tiny_whisper_dir, tmp_path):
    from transformers import WhisperFeatureExtractor

    bad = tmp_path / "bad_whisper"
    shutil.copytree(tiny_whisper_dir, bad)
    WhisperFeatureExtractor(feature_size=80, chunk_length=2).save_pretrained(bad)
    with pytest.raises(UnknownModelError, match="makes 200 mel frames but the encoder takes 100"):
        load_adapter(str(bad))
