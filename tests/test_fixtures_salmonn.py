"""SALMONN against its reference implementation: every array of the fixture's reference_outputs.npz.

The fixture set (ACTSTORE_FIXTURES, default ../shared/fixtures from the repository root) holds a
tiny random-initialised SALMONN in the released formats and what SALMONN's own code computed on
it. Everything is found through `salmonn/config.json`, `decode_config.yaml` and `inputs.json`
(a held-back set differs in sizes, seeds, clip counts and lengths), and the model is loaded by
`load_adapter` on the fixture directory: the same code path as a real checkpoint.

Tolerances: the encoders and the LLM are tested from the reference's stored spectrogram and
fbank (README §7: a port reproduces them to ~4e-6); the two front ends are tested on their own
(README §5.5: Whisper's feature extractor to ~1.1e-5, an fbank port to ~4e-5), and the adapter's
end-to-end pooled vectors, which include the front ends, with a correspondingly wider tolerance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from actstore.ingest.items import Item

from _fixtures_dir import fixtures_root

pytestmark = pytest.mark.fixtures

REPO = Path(__file__).resolve().parents[1]
TOL_FRONT_END = 3e-5      # spectrogram, BEATs fbank
TOL_MODEL = 1e-5          # encoders, Q-Former, LLM from stored inputs (observed <= 5e-6)
TOL_END_TO_END = 3e-5     # adapter from raw audio: front-end differences carried through (observed <= 1.5e-6)
WORST: dict[str, float] = {}


ROOT = fixtures_root()
SET = ROOT / "salmonn"
if not (SET / "inputs.json").is_file():
    if os.environ.get("ACTSTORE_FIXTURES"):  # asked for explicitly: a missing set is a failure
        raise RuntimeError(f"ACTSTORE_FIXTURES has no SALMONN set at {SET}")
    pytest.skip(f"no SALMONN fixture set (ACTSTORE_FIXTURES={ROOT}); set ACTSTORE_FIXTURES",
                allow_module_level=True)

INPUTS = json.loads((SET / "inputs.json").read_text())
CONFIG = json.loads((SET / "config.json").read_text())
CLIPS = INPUTS["clips"]


def close(name: str, got, want, tol: float) -> None:
    """assert |got - want| <= tol (abs) + tol * |want| (rel), and remember the worst difference."""
    got = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    diff = float(np.abs(got - want).max()) if got.size else 0.0
    key = name.split("_", 1)[1] if name.startswith("clip") else name
    WORST[key] = max(WORST.get(key, 0.0), diff)
    np.testing.assert_allclose(got, want, atol=tol, rtol=tol, err_msg=name)


@pytest.fixture(scope="module", autouse=True)
def report_worst():
    yield
    if WORST:
        print("\nSALMONN fixture worst |diff|: " + ", ".join(f"{k} {v:.2e}" for k, v in sorted(WORST.items())))


@pytest.fixture(scope="module")
def ref():
    return np.load(SET / "reference_outputs.npz")


@pytest.fixture(scope="module")
def adapter():
    from actstore.ingest.adapters import load_adapter

    a = load_adapter(str(SET), dtype="float32")
    assert type(a).__name__ == "SalmonnAdapter"
    return a


def clip_audio(clip) -> np.ndarray:
    return np.load(SET / clip["file_npy"])


def test_config_geometry_matches_the_decode_config(adapter):
    m, p = adapter.model, adapter.parts
    assert (p.kernel_frames, p.stride_frames) == (CONFIG["window"]["kernel_frames"], CONFIG["window"]["stride_frames"])
    assert m.n_layers == CONFIG["llama"]["num_hidden_layers"]
    assert m.encoder_width == CONFIG["qformer"]["encoder_width"]
    assert p.lora_rank == CONFIG["lora"]["lora_rank"] and m.lora_targets == sorted(CONFIG["lora"]["target_modules"])
    assert p.prompt_template == INPUTS["prompt_template"]
    for clip in CLIPS:
        assert m.num_windows == clip["num_windows"] and p.num_query_tokens == clip["num_query_tokens"]


def test_prompt_token_ids(adapter):
    prompt = adapter.model.speech_prompt(INPUTS["task_prompt"])
    assert prompt.before == INPUTS["p_before_ids"]
    assert prompt.after == INPUTS["p_after_ids"]
    assert adapter.model.tokenizer.bos_token_id == INPUTS["bos_token_id"]


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: f"clip{c['index']}")
def test_front_ends(adapter, ref, clip):
    from actstore.ingest.adapters.salmonn.beats import beats_fbank
    from actstore.ingest.adapters.salmonn.model import salmonn_audio

    k = clip["index"]
    wav = salmonn_audio(clip_audio(clip))
    assert len(wav) == clip["num_samples_after_salmonn_padding"]
    close(f"clip{k}_spectrogram", adapter.model.spectrograms([wav])[0], ref[f"clip{k}_spectrogram"], TOL_FRONT_END)
    fb = beats_fbank(torch.from_numpy(wav))
    assert fb.shape[0] == clip["beats_fbank_frames"]
    close(f"clip{k}_beats_fbank", fb, ref[f"clip{k}_beats_fbank"], TOL_FRONT_END)


def _run_stored(adapter, ref, clip):
    """Speech branch + LLM of one clip from the reference's stored spectrogram and fbank."""
    from actstore.ingest.adapters.salmonn.model import salmonn_audio

    k, m = clip["index"], adapter.model
    wav = salmonn_audio(clip_audio(clip))
    audio = m.encode_audio([wav], spectrograms=torch.from_numpy(ref[f"clip{k}_spectrogram"])[None],
                           fbanks=[torch.from_numpy(ref[f"clip{k}_beats_fbank"])], details=True)
    prompt = m.speech_prompt(INPUTS["task_prompt"])
    embeds, attn, layout = m.llm_inputs([prompt], audio.auditory)
    states = m.llm_states(embeds, attn, range(1, m.n_layers + 1), True)
    return audio, embeds, states, layout


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: f"clip{c['index']}")
def test_encoders_qformer_and_llm_from_stored_inputs(adapter, ref, clip):
    k = clip["index"]
    r = lambda n: ref[f"clip{k}_{n}"]  # noqa: E731
    audio, embeds, states, layout = _run_stored(adapter, ref, clip)
    n_w, n_b = clip["whisper_encoder_frames_valid"], clip["beats_tokens"]
    assert int(audio.whisper_frames[0]) == n_w and audio.beats_tokens == [n_b]
    assert int(audio.valid_windows[0]) == clip["num_valid_windows"]
    close(f"clip{k}_whisper_out", audio.whisper_layers[-1][0], r("whisper_out"), TOL_MODEL)
    close(f"clip{k}_whisper_layers_pooled_valid",
          torch.stack([h[0, :n_w].mean(0) for h in audio.whisper_layers]), r("whisper_layers_pooled_valid"), TOL_MODEL)
    close(f"clip{k}_beats_out", audio.beats_out[0], r("beats_out"), TOL_MODEL)
    close(f"clip{k}_beats_layers_pooled", torch.stack([h.mean(0) for h in audio.beats_layers[0]]),
          r("beats_layers_pooled"), TOL_MODEL)
    concat = audio.concat[0]
    assert concat.shape[0] == clip["concat_frames"] and concat.shape[1] == clip["concat_dim"]
    close(f"clip{k}_concat", concat, r("concat"), TOL_MODEL)
    close(f"clip{k}_concat_pooled_valid", concat[:n_w].mean(0), r("concat_pooled_valid"), TOL_MODEL)
    close(f"clip{k}_concat_pooled_all1500", concat.mean(0), r("concat_pooled_all1500"), TOL_MODEL)
    close(f"clip{k}_qformer_out", audio.qformer[0], r("qformer_out"), TOL_MODEL)
    aud = audio.auditory[0]
    close(f"clip{k}_auditory_embeds", aud, r("auditory_embeds"), TOL_MODEL)
    close(f"clip{k}_auditory_pooled_all", aud.mean(0), r("auditory_pooled_all"), TOL_MODEL)
    nv = clip["num_valid_windows"] * clip["num_query_tokens"]
    close(f"clip{k}_auditory_pooled_valid_windows", aud[:nv].mean(0), r("auditory_pooled_valid_windows"), TOL_MODEL)

    ranges = clip["llm_index_ranges"]
    lay = layout[0]
    for key, name in (("bos", "bos"), ("prompt_before", "before"), ("speech", "speech"), ("prompt_after", "after")):
        assert lay[name] == list(range(*ranges[key])), key
    assert embeds.shape[1] == clip["llm_seq_len"]
    close(f"clip{k}_llm_input_embeds", embeds[0], r("llm_input_embeds"), TOL_MODEL)
    by_name = {"input_embeds": embeds[0], "final_norm": states["final_norm"][0]}
    by_name.update({f"layer_{i - 1}": states[i][0] for i in range(1, adapter.model.n_layers + 1)})
    hidden = torch.stack([by_name[n] for n in INPUTS["llm_point_names"]])
    close(f"clip{k}_llm_hidden", hidden, r("llm_hidden"), TOL_MODEL)
    sets = {"speech": lay["speech"], "text": lay["bos"] + lay["before"] + lay["after"],
            "text_before": lay["bos"] + lay["before"], "text_after": lay["after"],
            "all": list(range(embeds.shape[1]))}
    for key, idx in sets.items():
        close(f"clip{k}_llm_pooled_{key}", hidden[:, idx].mean(1), r(f"llm_pooled_{key}"), TOL_MODEL)


def _pairs(text: str):
    speech = [Item(sentence_id=c["index"], lang="eng", modality="speech", sample_id=f"clip{c['index']}",
                   split="fixture", audio=clip_audio(c)) for c in CLIPS]
    texts = [Item(sentence_id=c["index"], lang="eng", modality="text", sample_id=f"t{c['index']}",
                  split="fixture", text=text) for c in CLIPS]
    return speech, texts


def test_adapter_paired_mode_reproduces_the_reference_prompt(adapter, ref):
    """The study's paired prompt with the task as 'text' is exactly the reference computation:
    all clips in one padded batch, from raw audio."""
    speech, texts = _pairs(INPUTS["task_prompt"])
    n = adapter.model.n_layers
    names = INPUTS["llm_point_names"]
    row = {f"L{i}": names.index(f"layer_{i - 1}") for i in range(1, n + 1)}
    row.update(final_norm=names.index("final_norm"), embed=names.index("input_embeds"),
               qformer=names.index("input_embeds"))
    points = adapter.points("speech") + adapter.points("text")
    out = adapter.encode_pairs(speech, texts, points)
    for b, clip in enumerate(CLIPS):
        k = clip["index"]
        close("e2e_speech.encoder", out["speech.encoder"].vectors[b], ref[f"clip{k}_concat_pooled_valid"], TOL_END_TO_END)
        assert out["speech.encoder"].n_frames[b] == clip["whisper_encoder_frames_valid"]
        close("e2e_speech.qformer", out["speech.qformer"].vectors[b], ref[f"clip{k}_auditory_pooled_all"], TOL_END_TO_END)
        for p in points:
            if p == "speech.encoder":
                continue
            modality, what = p.split(".", 1)
            key = "llm_pooled_speech" if modality == "speech" else "llm_pooled_text"
            close(f"e2e_{modality}.llm_pooled", out[p].vectors[b], ref[f"clip{k}_{key}"][row[what]], TOL_END_TO_END)
        r = clip["llm_index_ranges"]
        assert out["speech.L1"].n_frames[b] == r["speech"][1] - r["speech"][0]
        assert out["text.L1"].n_frames[b] == clip["llm_seq_len"] - out["speech.L1"].n_frames[b]


def test_adapter_pooling_options(ref):
    """speech_pooling=valid_windows and text_pooling=sentence_tokens pool the reference's states
    over the first valid windows and over the task prompt's own tokens."""
    from actstore.ingest.adapters import load_adapter

    a = load_adapter(str(SET), dtype="float32",
                     options={"speech_pooling": "valid_windows", "text_pooling": "sentence_tokens"})
    assert a.info.extra["speech_pooling"] == "valid_windows"
    speech, texts = _pairs(INPUTS["task_prompt"])
    out = a.encode_pairs(speech, texts, ["speech.qformer", "speech.L1", "text.L1"])
    names = INPUTS["llm_point_names"]
    # the task prompt's own tokens in p_after: exactly the task, once decoded
    prompt = a.model.speech_prompt(INPUTS["task_prompt"])
    assert prompt.after == INPUTS["p_after_ids"]
    own = prompt.sentence
    assert a.model.tokenizer.decode([prompt.after[i] for i in own]).strip() == INPUTS["task_prompt"]
    assert own == list(range(own[0], own[-1] + 1))
    for b, clip in enumerate(CLIPS):
        k = clip["index"]
        close("e2e_qformer_valid_windows", out["speech.qformer"].vectors[b],
              ref[f"clip{k}_auditory_pooled_valid_windows"], TOL_END_TO_END)
        r = clip["llm_index_ranges"]
        hid = ref[f"clip{k}_llm_hidden"][names.index("layer_0")]
        nv = clip["num_valid_windows"] * clip["num_query_tokens"]
        s0 = r["speech"][0]
        close("e2e_speech.L1_valid_windows", out["speech.L1"].vectors[b], hid[s0:s0 + nv].mean(0), TOL_END_TO_END)
        a0 = r["prompt_after"][0]
        assert out["text.L1"].n_frames[b] == len(own)
        close("e2e_text.L1_sentence_tokens", out["text.L1"].vectors[b], hid[[a0 + i for i in own]].mean(0),
              TOL_END_TO_END)
