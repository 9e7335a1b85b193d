"""SONAR adapters vs the reference (fairseq2/SONAR) outputs in the golden fixture set.

The fixture directory comes from ACTSTORE_FIXTURES (default: ../shared/fixtures relative to the
repository root). Every file is found through the set's `config.json`, `asset_card.yaml` and
`inputs.json`; shapes, layer counts, languages, clip counts and pooler depth are read from them
(a held-back set differs in all of these). The models are loaded with `load_adapter`, the code
path that loads real checkpoints.

Tolerances (fixture README sections 3.6, 4.5, 7): model outputs computed from the stored token
ids / fbank: 1e-5 absolute (observed here: <= 1e-6); the fbank port (kaldi-native-fbank vs
fairseq2n): 5e-4 absolute; embeddings from our own fbank of the stored waveform: 5e-5.
The worst difference per output is kept in `WORST`; pytest's terminal summary prints it (conftest.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.sonar.checkpoint import card_file, read_card
from actstore.ingest.adapters.sonar.fbank import kaldi_fbank, standardize
from actstore.ingest.items import Item

from _fixtures_dir import fixtures_root

pytestmark = pytest.mark.fixtures

REPO = Path(__file__).resolve().parents[1]


ROOT = fixtures_root()
MODEL_TOL = 1e-5
FBANK_TOL = 5e-4
FROM_WAV_TOL = 5e-5
WORST: dict[str, float] = {}


def _record(name: str, got, want, tol: float) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs {want.shape}"
    diff = float(np.abs(got - want).max()) if got.size else 0.0
    WORST[name] = max(WORST.get(name, 0.0), diff)
    print(f"  {name}: max|diff| = {diff:.3g}")
    assert diff <= tol, f"{name}: max |diff| {diff:.3g} > {tol}"


def _set_dir(kind: str) -> Path:
    d = ROOT / "sonar" / kind
    if not (d / "config.json").is_file():
        if os.environ.get("ACTSTORE_FIXTURES"):  # asked for explicitly: a missing set is a failure
            pytest.fail(f"ACTSTORE_FIXTURES has no SONAR {kind} set at {d}")
        pytest.skip(f"no SONAR {kind} fixture set at {d} (set ACTSTORE_FIXTURES)")
    return d


def _checkpoint_of(d: Path) -> Path:
    card = read_card(d / "asset_card.yaml")
    path = card_file(d, card["checkpoint"])
    assert path is not None and path.is_file(), card["checkpoint"]
    return path


# -- text -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_set():
    d = _set_dir("text")
    config = json.loads((d / "config.json").read_text())
    inputs = json.loads((d / "inputs.json").read_text())
    ref = np.load(d / "reference_outputs.npz")
    adapter = load_adapter(str(d))
    return d, config, inputs, ref, adapter


def _text_points(adapter) -> list[str]:
    """Adapter points in the reference's order [embed, layer_0.., final_layer_norm]."""
    return adapter.points("text")  # text.embed, text.L1..L{n}, text.pooled (= final LN)


def test_text_loads_from_the_card_with_the_configured_shape(text_set):
    d, config, _, _, adapter = text_set
    assert adapter.checkpoint == _checkpoint_of(d)
    resolved = config["resolved_SonarTextEncoderConfig"]
    n = resolved["num_encoder_layers"]
    assert adapter.points("text") == (["text.embed"] + [f"text.L{i}" for i in range(1, n + 1)]
                                      + ["text.pooled"])
    assert adapter.width("text.pooled") == resolved["model_dim"]
    assert adapter.tokenizer.vocab_size == resolved["vocab_info"]["size"]


def test_text_token_ids_both_conventions(text_set):
    from actstore.ingest.adapters.sonar.text import fs2_to_hf_ids

    _, _, inputs, _, adapter = text_set
    items = [Item(sentence_id=i, lang=it["lang"], modality="text", sample_id=str(i), split="x",
                  text=it["text"]) for i, it in enumerate(inputs["items"])]
    ours = adapter.token_ids(items)
    for it, ids in zip(inputs["items"], ours):
        assert ids == it["token_ids_fairseq2"]
        assert fs2_to_hf_ids(torch.tensor(ids)).tolist() == it["token_ids_hf_nllb_convention"]
    WORST["text token ids (both conventions)"] = 0.0


def _pool(out, points, n):
    return np.stack([out[p][0][0, :n].double().mean(0).numpy() for p in points])


def test_text_single_items_all_points_and_embedding(text_set):
    _, _, inputs, ref, adapter = text_set
    points = _text_points(adapter)
    unpooled = {k for k in ref.files if k.startswith("unpooled_item")}
    for i, it in enumerate(inputs["items"]):
        ids = torch.tensor([it["token_ids_fairseq2"]])
        out = adapter.forward_ids(ids, torch.tensor([ids.shape[1]]), points)
        _record("text single_pooled", _pool(out, points, ids.shape[1]), ref["single_pooled"][i], MODEL_TOL)
        _record("text single_embedding", out["text.pooled"][0][0].mean(0), ref["single_embedding"][i],
                MODEL_TOL)
        if f"unpooled_item{i}" in unpooled:
            got = np.stack([out[p][0][0].numpy() for p in points])
            _record("text unpooled_item", got, ref[f"unpooled_item{i}"], MODEL_TOL)


def test_text_padded_batches(text_set):
    _, _, inputs, ref, adapter = text_set
    points = _text_points(adapter)
    for batch in inputs["batches"]:
        name = batch["name"]
        ids = torch.from_numpy(ref[f"{name}_token_ids"])
        lengths = torch.from_numpy(ref[f"{name}_seq_lens"])
        assert ref[f"{name}_items"].tolist() == batch["items"]
        out = adapter.forward_ids(ids, lengths, points)
        for j in range(len(batch["items"])):
            n = int(lengths[j])
            pooled = np.stack([out[p][0][j, :n].double().mean(0).numpy() for p in points])
            _record("text batch_pooled", pooled, ref[f"{name}_pooled"][j], MODEL_TOL)
            _record("text batch_embedding", pooled[-1], ref[f"{name}_embedding"][j], MODEL_TOL)
            valid = np.stack([out[p][0][j, :n].numpy() for p in points])
            _record("text batch_unpooled (valid positions)", valid,
                    ref[f"{name}_unpooled"][j][:, :n], MODEL_TOL)


def test_text_pipeline_embedding_through_encode(text_set):
    """`encode` from raw text (our tokeniser, per-language items) = SONAR's pipeline.predict."""
    _, _, inputs, ref, adapter = text_set
    iso = {it["lang"]: it["lang"] for it in inputs["items"]}  # FLORES codes are accepted as-is
    items = [Item(sentence_id=i, lang=iso[it["lang"]], modality="text", sample_id=str(i), split="x",
                  text=it["text"]) for i, it in enumerate(inputs["items"])]
    got = adapter.encode(items, ["text.pooled"])["text.pooled"].vectors
    _record("text pipeline_embedding", got, ref["pipeline_embedding"], MODEL_TOL)


# -- speech -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def speech_set():
    d = _set_dir("speech")
    config = json.loads((d / "config.json").read_text())
    inputs = json.loads((d / "inputs.json").read_text())
    ref = np.load(d / "reference_outputs.npz")
    adapter = load_adapter(str(d))
    lang = adapter.languages[0]
    return d, config, inputs, ref, adapter, lang


def _speech_points(adapter) -> list[str]:
    """Reference order [frontend, layer_0.., final_layer_norm] (speech.pooled is separate)."""
    return [p for p in adapter.points("speech") if p != "speech.pooled"]


def test_speech_loads_from_the_card_with_the_configured_depths(speech_set):
    d, config, _, _, adapter, lang = speech_set
    resolved = config["resolved_SonarSpeechEncoderConfig"]
    assert adapter.languages == [lang] and adapter._ckpts[lang][0] == _checkpoint_of(d)
    n = resolved["w2v2_encoder_config"]["num_encoder_layers"]
    assert adapter.points("speech") == (["speech.embed"] + [f"speech.L{i}" for i in range(1, n + 1)]
                                        + ["speech.final_norm", "speech.pooled"])
    assert adapter.info.extra["pooler_layers"][lang] == resolved["num_decoder_layers"]
    assert adapter.width("speech.pooled") == resolved["model_dim"]


def test_speech_fbank_port(speech_set):
    d, _, inputs, ref, _, _ = speech_set
    for clip in inputs["clips"]:
        k = clip["index"]
        wav = np.load(d / clip["file_npy"])
        pcm, sr = sf.read(d / clip["file_wav"], dtype="float32")
        assert sr == inputs["sample_rate"] and np.array_equal(pcm, wav)
        raw = kaldi_fbank(wav)
        assert raw.shape[0] == clip["fbank_frames"]
        _record("speech fbank_unstandardized", raw, ref[f"fbank_unstandardized_clip{k}"], FBANK_TOL)
        _record("speech fbank (standardised)", standardize(raw), ref[f"fbank_clip{k}"], FBANK_TOL)


def test_speech_single_clips_from_stored_fbank(speech_set):
    _, _, inputs, ref, adapter, lang = speech_set
    points = _speech_points(adapter)
    for clip in inputs["clips"]:
        k = clip["index"]
        fb = torch.from_numpy(ref[f"fbank_clip{k}"])[None]
        states: list = []
        out = adapter.forward_fbank(lang, fb, torch.tensor([fb.shape[1]]), points + ["speech.pooled"],
                                    states)
        n = clip["encoder_frames_alone"]
        assert int(out[points[0]][1][0].sum()) == n == int(ref["single_encoder_frames"][k])
        _record("speech single_pooled", _pool(out, points, n), ref["single_pooled"][k], MODEL_TOL)
        _record("speech single_embedding", out["speech.pooled"][0][0, 0], ref["single_embedding"][k],
                MODEL_TOL)
        _record("speech single_pooler_query_states", torch.stack(states, 1)[0],
                ref["single_pooler_query_states"][k], MODEL_TOL)
        if f"unpooled_clip{k}" in ref.files:
            # the reference padded the fbank to an even length first: for an odd T it holds
            # ceil(T/2) positions, of which the first n = floor(T/2) are valid (README 4.4)
            want = ref[f"unpooled_clip{k}"]
            assert want.shape[1] == -(-int(fb.shape[1]) // 2)
            got = np.stack([out[p][0][0, :n].numpy() for p in points])
            _record("speech unpooled_clip (valid positions)", got, want[:, :n], MODEL_TOL)


def test_speech_padded_batches_from_stored_fbank(speech_set):
    _, _, inputs, ref, adapter, lang = speech_set
    points = _speech_points(adapter)
    for batch in inputs["batches"]:
        name = batch["name"]
        assert ref[f"{name}_items"].tolist() == batch["items"]
        fb = torch.from_numpy(ref[f"{name}_fbank_seqs"])
        lengths = torch.from_numpy(ref[f"{name}_fbank_seq_lens"])
        states: list = []
        out = adapter.forward_fbank(lang, fb, lengths, points + ["speech.pooled"], states)
        frames = ref[f"{name}_encoder_frames"]
        np.testing.assert_array_equal(out[points[0]][1].sum(1).numpy(), frames)
        for j in range(len(batch["items"])):
            n = int(frames[j])
            pooled = np.stack([out[p][0][j, :n].double().mean(0).numpy() for p in points])
            _record("speech batch_pooled", pooled, ref[f"{name}_pooled"][j], MODEL_TOL)
            _record("speech batch_embedding", out["speech.pooled"][0][j, 0], ref[f"{name}_embedding"][j],
                    MODEL_TOL)
            _record("speech batch_pooler_query_states", torch.stack(states, 1)[j],
                    ref[f"{name}_pooler_query_states"][j], MODEL_TOL)


def test_speech_pipeline_embedding_from_the_waveforms(speech_set):
    """`encode` on the waveforms (our fbank, one padded batch) = SONAR's pipeline.predict."""
    d, _, inputs, ref, adapter, lang = speech_set
    items = [Item(sentence_id=c["index"], lang=lang, modality="speech", sample_id=str(c["index"]),
                  split="x", audio=np.load(d / c["file_npy"])) for c in inputs["clips"]]
    out = adapter.encode(items, ["speech.pooled", "speech.final_norm"])
    _record("speech pipeline_embedding (from wav, our fbank)", out["speech.pooled"].vectors,
            ref["pipeline_embedding"], FROM_WAV_TOL)
    np.testing.assert_array_equal(out["speech.final_norm"].n_frames,
                                  [c["encoder_frames_alone"] for c in inputs["clips"]])
