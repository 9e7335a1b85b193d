"""SALMONN adapter on the tiny random-init model that `actstore make-tiny-model --kind salmonn` writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from _models import speech_items
from actstore.errors import ActstoreError, DataSourceError, UnknownModelError
from actstore.ingest.adapters import adapter_for, load_adapter
from actstore.ingest.adapters.salmonn.adapter import SALMONN_STUDY_LAYERS, SalmonnAdapter
from actstore.ingest.items import Item
from actstore.ingest.model_paths import resolve_model
from actstore.ingest.adapters.salmonn import tiny as tiny_salmonn

TEXTS = ["Hello world.", "Сегодня хорошая погода, 5 €.", "漢字とかな。"]
LENGTHS = [8000, 40000, 23456]  # 0.5 s (padded to 1 s by SALMONN), 2.5 s, 1.47 s


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from actstore.cli import main

    out = tmp_path_factory.mktemp("tiny_salmonn") / "model"
    result = CliRunner().invoke(main, ["make-tiny-model", "--kind", "salmonn", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    return out


@pytest.fixture(scope="module")
def adapter(tiny_dir):
    return load_adapter(str(tiny_dir))


@pytest.fixture(scope="module")
def separate(tiny_dir):
    return load_adapter(str(tiny_dir), options={"mode": "separate"})


def pairs(lengths=LENGTHS, texts=TEXTS):
    speech = speech_items(lengths)
    text = [Item(sentence_id=s.sentence_id, lang="eng", modality="text", sample_id=f"t{i}",
                 split="devtest", text=t) for i, (s, t) in enumerate(zip(speech, texts))]
    return speech, text


def test_recognised_points_widths_and_labels(tiny_dir, adapter):
    assert adapter_for(resolve_model(str(tiny_dir))) is SalmonnAdapter
    assert adapter_for(resolve_model(str(tiny_dir / tiny_salmonn.CKPT_FILE))) is SalmonnAdapter
    assert adapter.paired and adapter.info.adapter == "salmonn" and adapter.info.random_init
    n = tiny_salmonn.LLM_LAYERS
    layers = [f"L{i}" for i in range(1, n + 1)]
    assert adapter.points("speech") == (["speech.encoder", "speech.qformer"]
                                        + [f"speech.{x}" for x in layers] + ["speech.final_norm"])
    assert adapter.points("text") == ["text.embed"] + [f"text.{x}" for x in layers] + ["text.final_norm"]
    assert adapter.width("speech.encoder") == tiny_salmonn.WHISPER_WIDTH + tiny_salmonn.BEATS_WIDTH
    assert {adapter.width(p) for p in adapter.points("text")} == {tiny_salmonn.LLM_WIDTH}
    assert [adapter.layer_of(p) for p in ("speech.encoder", "speech.qformer", "text.embed",
                                          "speech.L3", "text.final_norm")] == [None, 0, 0, 3, None]
    # the study's layer set, cut to the tiny model's depth
    assert adapter.study_layers == tuple(i for i in SALMONN_STUDY_LAYERS if i <= n) == (1, 2, 4)
    assert adapter.select_points("text", layers=list(adapter.study_layers)) == ["text.L1", "text.L2", "text.L4"]
    extra = adapter.info.extra
    assert extra["prompt_template"] == tiny_salmonn.TEMPLATE and extra["mode"] == "paired"
    assert extra["text_prompt"] == "USER: <Speech><SpeechHere></Speech> {text}\nASSISTANT:"
    assert extra["text_pooling"] == "all_non_speech" and extra["lora"]["targets"] == ["q_proj", "v_proj"]


def test_nothing_is_in_training_mode_and_lora_is_live(adapter):
    llm = adapter.model.llm
    dropouts = [m for m in llm.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts, "peft should have created LoRA dropout modules"
    assert not [name for name, m in adapter.model.named_modules() if m.training]
    lora_b = [p for n, p in llm.named_parameters() if "lora_B" in n]
    assert lora_b and all(float(p.abs().sum()) > 0 and not p.requires_grad for p in lora_b)


def test_padded_batch_equals_each_pair_alone(adapter):
    points = adapter.points("speech") + adapter.points("text")
    speech, text = pairs()
    batch = adapter.encode_pairs(speech, text, points)
    for i in range(len(speech)):
        alone = adapter.encode_pairs(speech[i:i + 1], text[i:i + 1], points)
        for p in points:
            np.testing.assert_allclose(batch[p].vectors[i], alone[p].vectors[0], atol=1e-5, rtol=0,
                                       err_msg=f"{p} pair {i}")
            assert batch[p].n_frames[i] == alone[p].n_frames[0]
    m = adapter.model
    # masks: Whisper frames over real audio (after SALMONN's >= 1 s padding); every auditory token
    assert list(batch["speech.encoder"].n_frames) == [max(n, 16000) // 320 + (max(n, 16000) % 320 > 0) for n in LENGTHS]
    assert set(batch["speech.L1"].n_frames) == {m.num_speech_tokens}
    for i, t in enumerate(TEXTS):
        prompt = m.speech_prompt(t)
        assert batch["text.L2"].n_frames[i] == 1 + len(prompt.before) + len(prompt.after)
    # speech.qformer is the LLM input at the speech positions
    audio = m.encode_audio([np.pad(speech[0].audio.astype(np.float64), (0, 8000))])
    np.testing.assert_allclose(batch["speech.qformer"].vectors[0], audio.auditory[0].mean(0).numpy(), atol=1e-6)


def test_eval_mode_is_deterministic_and_text_depends_on_its_audio(adapter):
    speech, text = pairs()
    a = adapter.encode_pairs(speech, text, ["speech.L2", "text.L2"])
    b = adapter.encode_pairs(speech, text, ["speech.L2", "text.L2"])
    for p in a:
        np.testing.assert_array_equal(a[p].vectors, b[p].vectors)
    # paired mode: the text positions attend to the audio of the same prompt
    other = adapter.encode_pairs(speech[::-1], [
        Item(sentence_id=s.sentence_id, lang="eng", modality="text", sample_id=t.sample_id,
             split="devtest", text=t.text) for s, t in zip(speech[::-1], text)], ["text.L2"])
    assert not np.allclose(other["text.L2"].vectors[0], a["text.L2"].vectors[0], atol=1e-4)


def test_sentence_token_pooling_picks_exactly_the_sentence(tiny_dir, adapter):
    m = adapter.model
    for t in TEXTS:
        prompt = m.speech_prompt(t)
        assert m.tokenizer.decode([prompt.after[i] for i in prompt.sentence]).strip() == t
        alone = m.text_prompt(t)
        assert m.tokenizer.decode([alone.before[i] for i in alone.sentence]).strip() == t
    own = load_adapter(str(tiny_dir), options={"text_pooling": "sentence_tokens"})
    speech, text = pairs()
    got = own.encode_pairs(speech, text, ["text.L1", "speech.L1"])
    full = adapter.encode_pairs(speech, text, ["text.L1", "speech.L1"])
    assert list(got["text.L1"].n_frames) == [len(m.speech_prompt(t).sentence) for t in TEXTS]
    np.testing.assert_allclose(got["speech.L1"].vectors, full["speech.L1"].vectors, atol=1e-6)
    assert own.info.extra["text_pooling"] == "sentence_tokens"


def test_separate_mode(adapter, separate):
    assert not separate.paired and separate.info.extra["task_prompt"] == "Please describe the audio."
    speech, text = pairs()
    sp = separate.encode(speech, separate.points("speech"))
    tx = separate.encode(text, separate.points("text"))
    for i in range(len(speech)):
        one = separate.encode(speech[i:i + 1], ["speech.L3"])
        np.testing.assert_allclose(sp["speech.L3"].vectors[i], one["speech.L3"].vectors[0], atol=1e-5)
        one = separate.encode(text[i:i + 1], ["text.L3"])
        np.testing.assert_allclose(tx["text.L3"].vectors[i], one["text.L3"].vectors[0], atol=1e-5)
    # text-only prompts hold BOS + the template around the sentence, nothing else
    m = separate.model
    assert list(tx["text.L1"].n_frames) == [1 + len(m.text_prompt(t).before) for t in TEXTS]
    # the audio-only pass is the paired pass whose "text" is the task prompt
    task = [Item(sentence_id=s.sentence_id, lang="eng", modality="text", sample_id="x", split="devtest",
                 text="Please describe the audio.") for s in speech]
    paired = adapter.encode_pairs(speech, task, ["speech.L3"])
    np.testing.assert_allclose(sp["speech.L3"].vectors, paired["speech.L3"].vectors, atol=1e-5)
    with pytest.raises(ActstoreError, match="mode=separate"):
        separate.encode_pairs(speech, text, ["speech.L1"])
    with pytest.raises(ActstoreError, match="encode_pairs"):
        adapter.encode(speech, ["speech.L1"])


def test_bad_input_and_options(tiny_dir, adapter):
    speech, text = pairs()
    with pytest.raises(ActstoreError, match="mismatched sentence ids"):
        adapter.encode_pairs(speech, text[::-1], ["text.L1"])
    with pytest.raises(ActstoreError, match="one text item per speech item"):
        adapter.encode_pairs(speech, text[:2], ["text.L1"])
    empty = [Item(sentence_id=0, lang="eng", modality="text", sample_id="e", split="devtest", text=" ")]
    with pytest.raises(DataSourceError, match="empty"):
        adapter.encode_pairs(speech[:1], empty, ["text.L1"])
    with pytest.raises(ActstoreError, match="Unknown text point"):
        adapter.encode_pairs(speech[:1], text[:1], ["text.L99"])
    with pytest.raises(ActstoreError, match="Unknown salmonn option"):
        load_adapter(str(tiny_dir), options={"pooling": "max"})
    with pytest.raises(ActstoreError, match="text_pooling"):
        load_adapter(str(tiny_dir), options={"text_pooling": "cls"})
    with pytest.raises(UnknownModelError, match="llama_path"):
        load_adapter(str(tiny_dir), options={"llama_path": str(tiny_dir / "no-such-vicuna")})


def test_not_salmonn_without_a_decode_config(tmp_path, tiny_dir):
    (tmp_path / "notes.yaml").write_text("model:\n  name: something else\n")
    assert not SalmonnAdapter.recognises(resolve_model(str(tmp_path)))
    assert not SalmonnAdapter.recognises(resolve_model(str(tiny_dir / "whisper")))
    with pytest.raises(UnknownModelError, match="not a SALMONN model"):
        load_adapter(str(tmp_path), adapter="salmonn")


def test_bfloat16_loads_without_float32_copy_and_pools_in_float32(tiny_dir, adapter):
    half = load_adapter(str(tiny_dir), dtype="bfloat16")
    m = half.model
    assert {p.dtype for p in m.parameters()} == {torch.bfloat16}
    speech, text = pairs(LENGTHS[:1], TEXTS[:1])
    out = half.encode_pairs(speech, text, ["speech.encoder", "text.L4"])
    ref = adapter.encode_pairs(speech, text, ["speech.encoder", "text.L4"])
    for p in out:
        assert out[p].vectors.dtype == np.float32
        assert np.isfinite(out[p].vectors).all()
        cos = float(np.dot(out[p].vectors[0], ref[p].vectors[0])
                    / np.linalg.norm(out[p].vectors[0]) / np.linalg.norm(ref[p].vectors[0]))
        assert cos > 0.99, (p, cos)


def test_bare_checkpoint_with_part_options(tmp_path, tiny_dir, adapter):
    """A salmonn*.pth without a decode config: SALMONN's released settings + options for the parts."""
    import shutil

    ckpt = tmp_path / "salmonn_v1.pth"
    shutil.copy(tiny_dir / tiny_salmonn.CKPT_FILE, ckpt)
    shutil.copytree(tiny_dir / "bert-base-uncased", tmp_path / "bert-base-uncased")
    assert adapter_for(resolve_model(str(ckpt))) is SalmonnAdapter
    with pytest.raises(UnknownModelError, match="whisper_path=DIR"):
        load_adapter(str(ckpt))
    bare = load_adapter(str(ckpt), options={"whisper_path": str(tiny_dir / "whisper"),
                                            "beats_path": str(tiny_dir / tiny_salmonn.BEATS_FILE),
                                            "llama_path": str(tiny_dir / "vicuna")})
    assert bare.info.extra["decode_config"] == str(ckpt)
    speech, text = pairs(LENGTHS[:1], TEXTS[:1])
    got = bare.encode_pairs(speech, text, ["text.L2"])
    want = adapter.encode_pairs(speech, text, ["text.L2"])
    np.testing.assert_array_equal(got["text.L2"].vectors, want["text.L2"].vectors)


def test_long_audio_is_cut_at_30_s_with_a_warning(adapter):
    speech = speech_items([30 * 16000 + 1600])
    _, text = pairs(LENGTHS[:1], TEXTS[:1])
    with pytest.warns(UserWarning, match="Truncating 1 clip"):
        out = adapter.encode_pairs(speech, text, ["speech.encoder", "speech.qformer"])
    assert out["speech.encoder"].n_frames[0] == 1500


def test_lora_rank_that_does_not_match_the_checkpoint(tmp_path, tiny_dir):
    import shutil

    import yaml

    copy = tmp_path / "m"
    shutil.copytree(tiny_dir, copy)
    cfg = yaml.safe_load((copy / "decode_config.yaml").read_text())
    cfg["model"]["lora_rank"] = 4
    (copy / "decode_config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(UnknownModelError, match="lora_rank"):
        load_adapter(str(copy))
