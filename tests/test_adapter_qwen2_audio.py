"""Qwen2-Audio adapter on a tiny random model (2 tower layers, 3 LLM layers, a 2 s window)."""

import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _models import (assert_batch_equals_single, assert_pairs_equal_alone, flores_lines, small_corpus,
                     speech_items, text_items)
from actstore.cli import main
from actstore.errors import ActstoreError, DataSourceError, UnknownModelError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.qwen2_audio.adapter import MIN_SAMPLES
from actstore.ingest.adapters.qwen2_audio.prompts import audio_token_count
from actstore.ingest.items import Item
from actstore.ingest.adapters.qwen2_audio.tiny import (LLM_LAYERS, LLM_WIDTH, TOWER_LAYERS, TOWER_WIDTH,
                                              build_tiny_qwen2_audio)

WINDOW = 200  # mel frames of the tiny tower (2 s)
LENGTHS = [1500, 7000, 16000, 31000]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny_qwen2_audio"),
                                  corpus_texts=small_corpus(), vocab_size=600)


@pytest.fixture(scope="module")
def paired(tiny_dir):
    return load_adapter(str(tiny_dir))


@pytest.fixture(scope="module")
def separate(tiny_dir):
    return load_adapter(str(tiny_dir), options={"mode": "separate"})


def pairs(lengths=LENGTHS, lang="eng", flores="eng_Latn"):
    """Speech and text items of the same sentences (chirps stand in for the recordings)."""
    speech = speech_items(lengths, lang=lang)
    texts = flores_lines(flores, len(lengths))
    text = [Item(sentence_id=s.sentence_id, lang=lang, modality="text", sample_id=f"t{i}",
                 split="devtest", text=texts[i]) for i, s in enumerate(speech)]
    return speech, text


def all_points(adapter):
    return adapter.points("speech") + adapter.points("text")


def test_recognised_points_widths_and_provenance(paired):
    assert type(paired).family == "qwen2-audio" and paired.paired is True
    speech = (["speech.embed"] + [f"speech.L{i}" for i in range(1, TOWER_LAYERS + 1)]
              + ["speech.projector"] + [f"speech.llm.L{j}" for j in range(1, LLM_LAYERS + 1)])
    text = ["text.llm.embed"] + [f"text.llm.L{j}" for j in range(1, LLM_LAYERS + 1)]
    assert paired.points("speech") == speech and paired.points("text") == text
    assert [paired.width(p) for p in speech] == [TOWER_WIDTH] * 3 + [LLM_WIDTH] * 4
    assert {paired.width(p) for p in text} == {LLM_WIDTH}
    # depth along the audio path: tower 0..2, LLM input 3, LLM layers 4..6 in both modalities
    assert [paired.layer_of(p) for p in speech] == [0, 1, 2, 3, 4, 5, 6]
    assert [paired.layer_of(p) for p in text] == [3, 4, 5, 6]
    info = paired.info
    assert info.random_init is True and info.adapter == "qwen2-audio"
    assert info.extra["mode"] == "paired" and info.extra["text_pool"] == "prompt"
    assert "{audio}{text}" in info.extra["prompt_template"]
    assert info.extra["audio_slot"] == "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    assert all(not m.training for m in paired.model.modules())


def test_loads_in_the_requested_dtype(tiny_dir):
    a = load_adapter(str(tiny_dir), dtype="bfloat16", options={"mode": "separate"})
    assert {p.dtype for p in a.model.parameters()} == {torch.bfloat16}
    out = a.encode(speech_items([4000]), ["speech.L1", "speech.llm.L3"])
    assert all(np.isfinite(v.vectors).all() and v.vectors.dtype == np.float32 for v in out.values())


@pytest.mark.parametrize("samples,tokens", [(960, 1), (961, 2), (16000, 25), (31999, 50),
                                            (480000, 750)])
def test_audio_token_formula_known_answers(samples, tokens):
    window = 200 if samples < 32000 else 3000
    assert audio_token_count(samples, window_frames=window) == tokens


def test_audio_positions_follow_the_length_formula_and_the_processor(paired):
    speech, text = pairs()
    batch = paired._prompts(speech, text)
    ids = batch.input_ids
    expected = [audio_token_count(n, window_frames=WINDOW) for n in LENGTHS]
    assert (ids == paired.config.audio_token_id).sum(1).tolist() == expected
    assert batch.audio.sum(1).tolist() == expected
    assert batch.tower_len.tolist() == [-(-min(-(-n // 160), WINDOW) // 2) for n in LENGTHS]
    # the same ids the model's own processor makes from the unexpanded prompt
    proc = paired.processor
    for b, (s, t) in enumerate(zip(speech, text)):
        prompt = paired.template.format(audio=paired.audio_slot, text=t.text)
        ref = proc(text=[prompt], audio=[s.audio], sampling_rate=16000, return_tensors="pt")
        n = int(batch.attention_mask[b].sum())
        assert ids[b, :n].tolist() == ref["input_ids"][0].tolist()
        np.testing.assert_array_equal(batch.features[b].numpy(), ref["input_features"][0].numpy())
    out = paired.encode_pairs(speech, text, ["speech.projector", "speech.llm.L1", "text.llm.L1"])
    assert out["speech.projector"].n_frames.tolist() == expected
    assert out["speech.llm.L1"].n_frames.tolist() == expected
    non_audio = (batch.attention_mask.sum(1) - torch.tensor(expected)).tolist()
    assert out["text.llm.L1"].n_frames.tolist() == non_audio


def test_paired_batch_equals_each_pair_alone(paired):
    speech, text = pairs()
    assert_pairs_equal_alone(paired, speech, text, all_points(paired))


def test_separate_batch_equals_single_items(separate):
    speech, text = pairs()
    out = assert_batch_equals_single(separate, speech, separate.points("speech"))
    assert out["speech.L1"].n_frames.tolist() == [-(-min(-(-n // 160), WINDOW) // 2) for n in LENGTHS]
    assert_batch_equals_single(separate, text, separate.points("text"))


def test_modes_share_speech_llm_points_but_not_text_points(paired, separate):
    """The audio precedes the text and the LLM is causal: only text points see the other modality."""
    speech, text = pairs(LENGTHS[:2])
    both = paired.encode_pairs(speech, text, all_points(paired))
    alone_s = separate.encode(speech, separate.points("speech"))
    alone_t = separate.encode(text, separate.points("text"))
    for p in separate.points("speech"):
        np.testing.assert_allclose(both[p].vectors, alone_s[p].vectors, atol=1e-5, rtol=0, err_msg=p)
    for p in ("text.llm.L1", f"text.llm.L{LLM_LAYERS}"):
        assert np.abs(both[p].vectors - alone_t[p].vectors).max() > 1e-3
    assert (both["text.llm.L1"].n_frames > alone_t["text.llm.L1"].n_frames).all()


def test_sentence_pooling_counts_the_sentence_tokens(tiny_dir):
    a = load_adapter(str(tiny_dir), options={"text_pool": "sentence"})
    assert a.info.extra["text_pool"] == "sentence"
    speech, text = pairs(LENGTHS[:3])
    out = a.encode_pairs(speech, text, ["text.llm.embed", "text.llm.L2"])
    n_tokens = [len(a.tokenizer(t.text)["input_ids"]) for t in text]
    assert out["text.llm.L2"].n_frames.tolist() == n_tokens
    # the embeddings pooled over the sentence's tokens are the mean of their embedding rows
    emb = a.llm.get_input_embeddings().weight.detach()
    for b, t in enumerate(text):
        ids = torch.tensor(a.tokenizer(t.text)["input_ids"])
        np.testing.assert_allclose(out["text.llm.embed"].vectors[b], emb[ids].mean(0).numpy(),
                                   atol=1e-6)


def test_hooked_points_equal_running_the_modules_by_hand(separate):
    a = separate
    (item,) = speech_items([9000])
    got = a.encode([item], ["speech.L2", "speech.projector"])
    fe = a.feature_extractor(item.audio, sampling_rate=16000, padding="max_length",
                             return_attention_mask=True, return_tensors="pt")
    tower = a.tower
    n_mel = int(fe["attention_mask"].sum())
    n_tower, n_tokens = (n_mel - 1) // 2 + 1, ((n_mel - 1) // 2 + 1 - 2) // 2 + 1
    with torch.no_grad():
        x = torch.nn.functional.gelu(tower.conv1(fe["input_features"]))
        x = torch.nn.functional.gelu(tower.conv2(x)).permute(0, 2, 1) + tower.embed_positions.weight
        keep = torch.arange(x.shape[1]) < n_tower
        bias = torch.zeros(1, 1, x.shape[1], x.shape[1]).masked_fill(~keep, float("-inf"))
        for layer in tower.layers:
            x = layer(x, bias)
        l2 = x[0, :n_tower].mean(0)
        pooled = tower.layer_norm(torch.nn.functional.avg_pool1d(x.permute(0, 2, 1), 2, 2).permute(0, 2, 1))
        proj = a.projector(pooled)[0, :n_tokens].mean(0)
    assert got["speech.L2"].n_frames[0] == n_tower and got["speech.projector"].n_frames[0] == n_tokens
    np.testing.assert_allclose(got["speech.L2"].vectors[0], l2.numpy(), atol=1e-5)
    np.testing.assert_allclose(got["speech.projector"].vectors[0], proj.numpy(), atol=1e-5)


def test_llm_layers_are_raw_layer_outputs(separate):
    """hidden_states[j] (j < M) is layer j's output; the last entry is after the final norm."""
    (item,) = text_items([("eng", "The cat sat on the mat.")])
    got = separate.encode([item], [f"text.llm.L{j}" for j in range(1, LLM_LAYERS + 1)])
    batch = separate._prompts(None, [item])
    with torch.no_grad():
        hs = separate.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                            output_hidden_states=True, use_cache=False).hidden_states
    for j in range(1, LLM_LAYERS):
        np.testing.assert_allclose(got[f"text.llm.L{j}"].vectors[0], hs[j][0].mean(0).numpy(), atol=1e-5)
    normed = hs[LLM_LAYERS][0].mean(0).numpy()
    assert np.abs(got[f"text.llm.L{LLM_LAYERS}"].vectors[0] - normed).max() > 1e-3


def test_eval_mode_is_deterministic(paired):
    speech, text = pairs(LENGTHS[:2])
    a = paired.encode_pairs(speech, text, all_points(paired))
    b = paired.encode_pairs(speech, text, all_points(paired))
    for p in a:
        np.testing.assert_array_equal(a[p].vectors, b[p].vectors)


def test_bad_input_is_refused(paired, separate, tiny_dir):
    speech, text = pairs(LENGTHS[:2])
    with pytest.raises(ActstoreError, match="paired mode: call encode_pairs"):
        paired.encode(speech, ["speech.L1"])
    with pytest.raises(ActstoreError, match="pair items of the same sentence"):
        paired.encode_pairs(speech, text[::-1], ["speech.L1"])
    with pytest.raises(ActstoreError, match="2 speech and 1 text"):
        paired.encode_pairs(speech, text[:1], ["speech.L1"])
    with pytest.raises(DataSourceError, match="shorter than 961 samples"):
        separate.encode(speech_items([MIN_SAMPLES - 1]), ["speech.L1"])
    with pytest.raises(DataSourceError, match="special token"):
        separate.encode(text_items([("eng", "a <|AUDIO|> b")]), ["text.llm.L1"])
    with pytest.raises(ActstoreError, match="Unknown speech point"):
        separate.encode(speech, ["speech.L9"])
    with pytest.warns(UserWarning, match="Truncating 1 clip"):
        out = separate.encode(speech_items([40000]), ["speech.L1"])
    assert out["speech.L1"].n_frames[0] == WINDOW // 2
    with pytest.raises(ActstoreError, match="Unknown Qwen2-Audio mode"):
        load_adapter(str(tiny_dir), options={"mode": "both"})
    with pytest.raises(ActstoreError, match=r"Unknown qwen2-audio option\(s\) \['moed'\]; use mode, template, text_pool"):
        load_adapter(str(tiny_dir), options={"moed": "separate"})
    with pytest.raises(ActstoreError, match="Unknown text_pool"):
        load_adapter(str(tiny_dir), options={"text_pool": "words"})
    with pytest.raises(ActstoreError, match="fields {audio} and {text}"):
        load_adapter(str(tiny_dir), options={"template": "{audio} only"})


def test_feature_extractor_window_must_match_the_tower(tiny_dir, tmp_path):
    from transformers import AutoProcessor, WhisperFeatureExtractor

    bad = tmp_path / "bad"
    shutil.copytree(tiny_dir, bad)
    proc = AutoProcessor.from_pretrained(bad)
    proc.feature_extractor = WhisperFeatureExtractor(feature_size=128, chunk_length=3)
    proc.save_pretrained(bad)
    with pytest.raises(UnknownModelError, match="makes 300 mel frames but the audio tower takes 200"):
        load_adapter(str(bad))


def test_cli_builds_a_loadable_tiny_model(tmp_path):
    out = tmp_path / "tiny"
    result = CliRunner().invoke(main, ["make-tiny-model", "--kind", "qwen2-audio", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0 and result.output.strip() == str(out)
    a = load_adapter(str(out), options={"mode": "separate"})
    assert type(a).family == "qwen2-audio" and a.info.random_init
    # the default tokenizer (all shipped FLORES text) turns any script into real tokens
    (item,) = text_items([("amh", flores_lines("amh_Ethi", 1)[0])])
    assert a.encode([item], ["text.llm.L1"])["text.llm.L1"].n_frames[0] > 10


def test_tiny_checkpoint_uses_the_published_key_names(tiny_dir):
    """The hub checkpoints' (transformers 4.x) names, so loading runs transformers' key conversion."""
    from safetensors import safe_open

    with safe_open(str(tiny_dir / "model.safetensors"), "pt") as f:
        roots = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("language_model") else "")
                 for k in f.keys()}
    assert roots == {"audio_tower", "multi_modal_projector", "language_model.model",
                     "language_model.lm_head"}


def test_custom_template_is_used_and_recorded(tiny_dir):
    template = "{audio}Repeat: {text}"
    a = load_adapter(str(tiny_dir), options={"template": template})
    assert a.info.extra["prompt_template"] == template
    speech, text = pairs(LENGTHS[:1])
    batch = a._prompts(speech, text)
    expected = a.tokenizer(template.format(
        audio=a.audio_slot.replace("<|AUDIO|>", "<|AUDIO|>" * int(batch.token_len[0])),
        text=text[0].text))["input_ids"]
    assert batch.input_ids[0].tolist() == expected
    out = a.encode_pairs(speech, text, ["text.llm.L1"])
    assert out["text.llm.L1"].n_frames[0] == len(expected) - int(batch.token_len[0])
