"""Neuron sites of the decoder-only families (Qwen2-Audio, SALMONN) on tiny random-init models:
names, widths and layers; known answers (each site = the masked mean, over the positions its
hidden state pools, of the tensor recomputed by hand from the hooked module's input); a padded
batch == each pair alone; `actstore ingest --sites` stores them and `actstore points` lists them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _cli import cli
from _models import assert_pairs_equal_alone, flores_lines, speech_items, write_manifest
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.items import Item
from actstore.store import Store

KINDS = ("ffn", "self_attn.q", "self_attn.k", "self_attn.v")
LENGTHS = [1500, 7000, 16000, 31000]


@pytest.fixture(scope="module")
def qwen(tiny_qwen2_audio_dir):
    return load_adapter(str(tiny_qwen2_audio_dir))


@pytest.fixture(scope="module")
def salmonn(tiny_salmonn_dir):
    return load_adapter(str(tiny_salmonn_dir))


def pairs(lengths=LENGTHS):
    speech = speech_items(lengths)
    texts = flores_lines("eng_Latn", len(lengths))
    text = [Item(sentence_id=s.sentence_id, lang="eng", modality="text", sample_id=f"t{i}",
                 split="devtest", text=texts[i]) for i, s in enumerate(speech)]
    return speech, text


def _mean(t: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    m = mask.to(t.device).float().unsqueeze(-1)
    return ((t.float() * m).sum(1) / m.sum(1)).cpu().numpy()


def _by_hand(layer, cap):
    """FFN activation (down_proj's input) and q/k/v recomputed from the captured module inputs."""
    x, a = cap.tensors["mlp_in"], cap.tensors["attn_in"]
    mlp, attn = layer.mlp, layer.self_attn
    out = {"ffn": mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)}
    for s in "qkv":
        proj = getattr(attn, f"{s}_proj")
        if hasattr(proj, "base_layer"):  # peft LoRA: base + B(A(x)) * scaling (dropout off in eval)
            out[f"self_attn.{s}"] = proj.base_layer(a) + proj.lora_B["default"](
                proj.lora_A["default"](a)) * proj.scaling["default"]
        else:
            out[f"self_attn.{s}"] = proj(a)
    return out


def _capture_layer_inputs(layer):
    cap = Capture()
    cap.input_of(layer.mlp, "mlp_in")
    cap.input_of(layer.self_attn, "attn_in")
    return cap


def test_qwen_site_names_widths_and_layers(qwen):
    n_tower, n_llm = len(qwen.tower.layers), len(qwen.llm.layers)
    for m in ("speech", "text"):
        assert qwen.optional_points(m) == [f"{m}.llm.L{j}.{k}" for j in range(1, n_llm + 1) for k in KINDS]
    cfg = qwen.config.text_config
    kv = cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads)
    assert [qwen.width(f"text.llm.L1.{k}") for k in KINDS] == [cfg.intermediate_size, cfg.hidden_size, kv, kv]
    assert kv < cfg.hidden_size  # the tiny model uses grouped-query attention: k/v are narrower
    assert qwen.layer_of("speech.llm.L2.ffn") == qwen.layer_of("speech.llm.L2") == n_tower + 3
    assert type(qwen).site_kinds == KINDS


def test_salmonn_site_names_widths_and_layers(salmonn):
    n = salmonn.model.n_layers
    for m in ("speech", "text"):
        assert salmonn.optional_points(m) == [f"{m}.L{i}.{k}" for i in range(1, n + 1) for k in KINDS]
    cfg = salmonn.model.llm.config
    assert salmonn.width("speech.L2.ffn") == cfg.intermediate_size
    assert salmonn.width("text.L1.self_attn.q") == cfg.hidden_size  # peft's LoRA wrapper keeps the width
    assert salmonn.layer_of("text.L2.self_attn.v") == 2


def test_qwen_sites_are_masked_means_of_the_recomputed_tensors(qwen):
    speech, text = pairs(LENGTHS[1:3])
    j = 2
    layer = qwen.llm.layers[j - 1]
    points = [f"{m}.llm.L{j}.{k}" for m in ("speech", "text") for k in KINDS]
    with _capture_layer_inputs(layer) as cap, torch.inference_mode():
        out = qwen.encode_pairs(speech, text, points + [f"speech.llm.L{j}", f"text.llm.L{j}"])
        want = _by_hand(layer, cap)
        batch = qwen._prompts(speech, text)  # audio = the audio-token positions, text = the rest
        for m, mask in (("speech", batch.audio), ("text", batch.text)):
            for k in KINDS:
                p = f"{m}.llm.L{j}.{k}"
                np.testing.assert_allclose(out[p].vectors, _mean(want[k], mask), atol=1e-5, err_msg=p)
                np.testing.assert_array_equal(out[p].n_frames, out[f"{m}.llm.L{j}"].n_frames)
    assert (out[f"speech.llm.L{j}.ffn"].n_frames == batch.audio.sum(1).numpy()).all()


def test_salmonn_sites_are_masked_means_of_the_recomputed_tensors(salmonn):
    speech, text = pairs(LENGTHS[1:3])
    i = 2
    layer = salmonn.model.llm.layers[i - 1]
    assert hasattr(layer.self_attn.q_proj, "base_layer")  # the tiny model has LoRA on q and v
    points = [f"{m}.L{i}.{k}" for m in ("speech", "text") for k in KINDS]
    with _capture_layer_inputs(layer) as cap, torch.inference_mode():
        out = salmonn.encode_pairs(speech, text, points + [f"speech.L{i}", f"text.L{i}"])
        want = _by_hand(layer, cap)
        hidden = salmonn._run(speech, [t.text for t in text], [f"speech.L{i}"], [f"text.L{i}"])
        masks = {m: hidden[f"{m}.L{i}"][1] for m in ("speech", "text")}  # the hidden states' positions
        for m in ("speech", "text"):
            for k in KINDS:
                p = f"{m}.L{i}.{k}"
                np.testing.assert_allclose(out[p].vectors, _mean(want[k], masks[m]), atol=1e-5, err_msg=p)
                np.testing.assert_array_equal(out[p].n_frames, out[f"{m}.L{i}"].n_frames)


@pytest.mark.parametrize("family", ["qwen", "salmonn"])
def test_padded_pairs_equal_each_pair_alone(family, request):
    adapter = request.getfixturevalue(family)
    speech, text = pairs()
    points = [p for m in ("speech", "text") for p in adapter.optional_points(m) if ".L1." in p or ".L3." in p]
    assert_pairs_equal_alone(adapter, speech, text, points)


def test_qwen_separate_mode_sites_equal_alone(tiny_qwen2_audio_dir):
    from _models import assert_batch_equals_single

    sep = load_adapter(str(tiny_qwen2_audio_dir), options={"mode": "separate"})
    speech, text = pairs()
    assert_batch_equals_single(sep, speech, ["speech.llm.L1.ffn", "speech.llm.L3.self_attn.k"])
    assert_batch_equals_single(sep, text, ["text.llm.L2.ffn", "text.llm.L1.self_attn.v"])


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """English speech (0.5-0.7 s noise) and its text, sentence ids 1..3."""
    return write_manifest(tmp_path_factory.mktemp("sites_decoder_only"), {"eng": flores_lines("eng_Latn", 3)})


@pytest.mark.parametrize("family,layers,expected", [
    ("qwen", "4", {"speech.llm.L1", "text.llm.L1", "speech.llm.L1.ffn", "text.llm.L1.ffn",
                   "speech.llm.L1.self_attn.k", "text.llm.L1.self_attn.k"}),
    ("salmonn", "2", {"speech.L2", "text.L2", "speech.L2.ffn", "text.L2.ffn", "speech.L2.self_attn.k",
                      "text.L2.self_attn.k"}),
])
def test_cli_ingest_stores_the_sites_and_points_lists_them(family, layers, expected, tmp_path, manifest,
                                                           request):
    model = request.getfixturevalue({"qwen": "tiny_qwen2_audio_dir", "salmonn": "tiny_salmonn_dir"}[family])
    db = str(tmp_path / "db")
    cli("ingest", "--db", db, "--model", model, "--source", "manifest", "--data-dir", manifest, "--langs",
        "eng", "--layers", layers, "--sites", "ffn,self_attn.k", "--quiet")
    store = Store.open(db)
    name = store.models()[0]
    assert set(store.points(name)["point"]) == expected
    adapter = request.getfixturevalue(family)
    site = sorted(p for p in expected if p.endswith(".ffn"))[0]
    rows = store.read(name, points=site)
    assert rows.vectors.shape == (3, adapter.width(site)) and np.isfinite(rows.vectors).all()
    listed = cli("points", "--model", model, "--format", "csv").output.splitlines()
    layer = adapter.layer_of(site)
    assert f"{site.split('.')[0]},{site},site,{layer},{adapter.width(site)},false" in listed
