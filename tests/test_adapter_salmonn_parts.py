"""SALMONN's parts on their own: BEATs' bucketing, weight norm and fbank, windows, key maps, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.common.kaldi_fbank import torch_kaldi_fbank as kaldi_fbank
from actstore.ingest.adapters.salmonn.beats import (beats_tokens, bucket_distances, load_checkpoint,
                                                    read_beats_checkpoint, relative_position_buckets)
from actstore.ingest.adapters.salmonn.checkpoint import llm_key, qformer_key, read_salmonn_checkpoint
from actstore.ingest.adapters.salmonn.qformer import num_windows, unfold_windows
from actstore.ingest.adapters.whisper.adapter import whisper_frames
from actstore.ingest.adapters.salmonn.tiny import beats_cfg, beats_state_dict

from _models import chirp


@pytest.mark.parametrize("rel,bucket", [(0, 0), (-5, 5), (5, 165), (-79, 79), (-80, 80), (80, 240),
                                        (-799, 159), (-5000, 159), (5000, 319)])
def test_relative_position_buckets_known_answers(rel, bucket):
    """Two-sided T5 buckets (320 buckets, max distance 800): key - query = rel."""
    assert int(bucket_distances(torch.tensor([rel]), 320, 800)[0]) == bucket
    if abs(rel) < 100:  # the [query, key] grid holds the same buckets
        q, k = (0, rel) if rel >= 0 else (-rel, 0)
        assert int(relative_position_buckets(100, 100, 320, 800)[q, k]) == bucket


def test_weight_norm_is_folded_like_torch(tmp_path):
    cfg = beats_cfg()
    sd = beats_state_dict(cfg, seed=3)
    conv = torch.nn.Conv1d(cfg["encoder_embed_dim"], cfg["encoder_embed_dim"], cfg["conv_pos"],
                           groups=cfg["conv_pos_groups"])
    conv = torch.nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(sd["encoder.pos_conv.0.weight_g"])
        conv.parametrizations.weight.original1.copy_(sd["encoder.pos_conv.0.weight_v"])
    torch.save({"cfg": cfg, "model": sd}, tmp_path / "b.pt")
    _, folded = read_beats_checkpoint(tmp_path / "b.pt")
    torch.testing.assert_close(folded["encoder.pos_conv.weight"], conv.weight.detach(), atol=1e-7, rtol=1e-6)
    assert not any(k.startswith("predictor") for k in folded)
    assert not any(".relative_attention_bias." in k for k in folded if not k.startswith("encoder.layers.0."))


def test_legacy_checkpoint_files_load_without_mmap(tmp_path):
    sd = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.save({"model": sd}, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    torch.testing.assert_close(load_checkpoint(tmp_path / "old.pth")["model"]["w"], sd["w"])


def test_kaldi_fbank_frames_and_silence():
    """snip_edges framing; digital silence hits the float32-eps floor (log eps) in every bin.

    The values themselves are checked against torchaudio's output in test_fixtures_salmonn."""
    wav = torch.from_numpy(chirp(12345, seed=4).astype(np.float64)) * 2**15
    assert kaldi_fbank(wav).shape == (1 + (12345 - 400) // 160, 128)
    assert kaldi_fbank(torch.zeros(399, dtype=torch.float64)).shape == (0, 128)
    silent = kaldi_fbank(torch.zeros(800, dtype=torch.float64))
    torch.testing.assert_close(silent, torch.full_like(silent, math.log(torch.finfo(torch.float32).eps)))


@pytest.mark.parametrize("n", [16000, 36800, 64800, 480000, 12345, 321])
def test_frame_counts_follow_the_reference_formulas(n):
    assert whisper_frames(n) == min(((math.ceil(n / 160) - 1) // 2) + 1, 1500)
    frames = 1 + (n - 400) // 160
    assert beats_tokens(frames) == 8 * (frames // 16)


def test_windows_are_salmonns_unfold():
    x = torch.randn(2, 1500, 5)
    kernel = stride = round(1500 * 0.333333 / 30.0)
    w = unfold_windows(x, kernel, stride)
    assert num_windows(1500, kernel, stride) == 88 and w.shape == (2 * 88, 17, 5)
    ref = torch.nn.functional.unfold(x.transpose(1, 2).unsqueeze(2), kernel_size=(1, kernel), stride=(1, stride))
    ref = ref.view(2, -1, kernel, ref.shape[-1]).permute(0, 3, 2, 1).reshape(-1, kernel, 5)
    torch.testing.assert_close(w, ref, rtol=0, atol=0)
    torch.testing.assert_close(w[88 + 3, 4], x[1, 3 * 17 + 4])


def test_key_maps():
    assert qformer_key("speech_Qformer.bert.embeddings.LayerNorm.weight") == "layernorm.weight"
    assert qformer_key("speech_Qformer.bert.embeddings.position_ids") is None
    assert (qformer_key("speech_Qformer.bert.encoder.layer.1.crossattention.self.key.bias")
            == "encoder.layer.1.crossattention.attention.key.bias")
    assert qformer_key("speech_Qformer.bert.encoder.layer.0.output_query.dense.weight") == \
        "encoder.layer.0.output_query.dense.weight"
    assert qformer_key("speech_Qformer.bert.encoder.layer.0.output.dense.weight") is None
    with_name = "llama_model.base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight"
    without = "llama_model.base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
    assert llm_key(with_name) == llm_key(without) == "layers.3.self_attn.q_proj.lora_A.default.weight"
    assert llm_key("llama_model.base_model.model.model.layers.0.self_attn.rotary_emb.inv_freq") is None


def test_checkpoint_errors(tmp_path):
    torch.save({"model": {"encoder.weight": torch.zeros(2)}}, tmp_path / "other.pth")
    with pytest.raises(UnknownModelError, match="no SALMONN weights"):
        read_salmonn_checkpoint(tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UnknownModelError, match="Cannot read"):
        read_salmonn_checkpoint(tmp_path / "junk.pth")
    torch.save({"model": {"speech_Qformer.bert.x": torch.zeros(1), "mystery.weight": torch.zeros(1)}},
               tmp_path / "odd.pth")
    with pytest.raises(UnknownModelError, match="mystery.weight"):
        read_salmonn_checkpoint(tmp_path / "odd.pth")
