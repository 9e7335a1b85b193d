"""CTranslate2 `model.bin` reader and Whisper converter, on RANDOM-INIT tiny models.

Reference: the `ctranslate2` package's own converter writes a tiny transformers Whisper in every
quantisation it offers; our reader must return its variables one for one (names, dtypes, values,
aliases), and converting back to transformers must give the original weights (exactly for
float32, within the quantisation step otherwise). Hand-built files cover every dtype code,
aliases and `weight_scale` without the package.
"""

import json
import struct

import numpy as np
import pytest
import torch

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.whisper.ctranslate2_format import read_ct2_model
from actstore.ingest.adapters.whisper.convert_ctranslate2 import convert_ctranslate2_whisper
from actstore.ingest.adapters.whisper.tiny import build_tiny_whisper

QUANTISATIONS = ["float32", "float16", "bfloat16", "int8", "int16", "int8_float16",
                 "int8_bfloat16"]
UNALIASED_ZERO = ("model.encoder.layers.0.fc2.bias", "model.encoder.layers.1.fc2.bias")


def _state(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A RANDOM-INIT tiny Whisper whose biases are random too (so the mapping of each is seen),
    except two equal zero biases, which CTranslate2 stores once and aliases."""
    from transformers import WhisperForConditionalGeneration

    src = build_tiny_whisper(tmp_path_factory.mktemp("tiny_whisper"))
    model = WhisperForConditionalGeneration.from_pretrained(src).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.zeros_like(p) if name in UNALIASED_ZERO
                        else torch.randn(p.shape, generator=gen) * 0.1)
    model.save_pretrained(src)
    return src


@pytest.fixture(scope="module")
def ct2_models(tiny_whisper, tmp_path_factory):
    """{quantisation: (directory written by ctranslate2, ctranslate2's in-memory spec)}."""
    conv_mod = pytest.importorskip("ctranslate2.converters",
                                   reason="the ctranslate2 package (the reference) is not installed")
    out = {}
    for q in QUANTISATIONS:
        d = tmp_path_factory.mktemp(f"ct2_{q}") / "model"
        conv_mod.TransformersConverter(str(tiny_whisper)).convert(str(d), quantization=q)
        spec = conv_mod.TransformersConverter(str(tiny_whisper))._load()
        spec.validate()
        spec.optimize(quantization=q)
        out[q] = (d, spec)
    return out


@pytest.mark.parametrize("quantisation", QUANTISATIONS)
def test_reader_matches_ctranslate2_variable_for_variable(ct2_models, quantisation):
    directory, spec = ct2_models[quantisation]
    model = read_ct2_model(directory / "model.bin")
    expected = spec.variables()
    aliases = {k: v for k, v in expected.items() if isinstance(v, str)}
    assert model.spec == "WhisperSpec"
    assert model.aliases == aliases and "decoder/projection/weight" in aliases
    assert set(model.variables) == set(expected) - set(aliases)
    for name, var in expected.items():
        if name in aliases:
            continue
        assert model.dtypes[name] == var.dtype, name
        want = var.to("float32").numpy() if var.dtype == "bfloat16" else var.numpy()
        got = model.variables[name]
        assert got.shape == tuple(want.shape), name
        np.testing.assert_array_equal(got, want, err_msg=name)
    quantised = {n for n in model.variables if n + "_scale" in model.variables}
    if quantisation.startswith("int"):
        assert {model.dtypes[n] for n in quantised} == {quantisation[:5].rstrip("_")}
    else:
        assert not quantised


@pytest.mark.parametrize("quantisation,atol", [("float32", 0), ("float16", 2e-3),
                                               ("bfloat16", 1.6e-2)])
def test_float_conversions_give_the_original_weights_back(ct2_models, tiny_whisper, tmp_path,
                                                          quantisation, atol):
    dest = convert_ctranslate2_whisper(ct2_models[quantisation][0], tmp_path / "hf")
    got, want = _state(dest), _state(tiny_whisper)
    assert set(got) == set(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name].numpy(), value.numpy(), atol=atol,
                                   rtol=atol and 2 ** -7, err_msg=name)


@pytest.mark.parametrize("quantisation", ["int8", "int16", "int8_float16"])
def test_integer_weights_are_dequantised_with_their_scale(ct2_models, tiny_whisper, tmp_path,
                                                          quantisation):
    directory, _ = ct2_models[quantisation]
    model = read_ct2_model(directory / "model.bin")
    dest = convert_ctranslate2_whisper(directory, tmp_path / "hf")
    got, want = _state(dest), _state(tiny_whisper)
    name = "model.encoder.layers.0.fc1.weight"
    scale = model.variables["encoder/layer_0/ffn/linear_0/weight_scale"]
    step = 1 / np.reshape(scale, (-1, 1)) if scale.ndim else 1 / scale
    err = np.abs(got[name].numpy() - want[name].numpy())
    assert np.all(err <= 0.5 * step + 1e-7)                  # at most half a step, row by row
    assert np.any(err > 0)                                    # and really quantised
    rel = max(float((got[k] - want[k]).abs().max() / want[k].abs().max().clamp_min(1e-6))
              for k in want if k.endswith("proj.weight"))
    assert rel < (0.02 if quantisation != "int16" else 0.002)


def test_whisper_adapter_reads_the_converted_float32_model(ct2_models, tiny_whisper, tmp_path):
    from _models import speech_items

    from actstore.ingest.adapters import load_adapter

    dest = convert_ctranslate2_whisper(ct2_models["float32"][0], tmp_path / "tiny-from-ct2")
    original, converted = load_adapter(str(tiny_whisper)), load_adapter(str(dest))
    items = speech_items([4000, 12000])
    points = original.points("speech")
    assert converted.points("speech") == points
    a, b = original.encode(items, points), converted.encode(items, points)
    for p in points:
        np.testing.assert_allclose(b[p].vectors, a[p].vectors, atol=1e-5, rtol=0, err_msg=p)
    provenance = json.loads((dest / "actstore-provenance.json").read_text())
    assert provenance["spec"] == "WhisperSpec" and provenance["stored_dtypes"]["float32"] > 0


# ---- hand-built files (no ctranslate2 needed) -------------------------------------------------
def _string(s: str) -> bytes:
    return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"


def _var(name: str, code: int, array: np.ndarray) -> bytes:
    raw = array.tobytes()
    return (_string(name) + struct.pack("<B", array.ndim)
            + struct.pack(f"<{array.ndim}I", *array.shape) + struct.pack("<BI", code, len(raw)) + raw)


def _file(variables: list[bytes], aliases: dict, version=6, spec="TestSpec") -> bytes:
    out = struct.pack("<I", version) + _string(spec) + struct.pack("<II", 3, len(variables))
    out += b"".join(variables) + struct.pack("<I", len(aliases))
    return out + b"".join(_string(a) + _string(t) for a, t in aliases.items())


def test_hand_built_file_every_dtype_alias_and_scale(tmp_path):
    bf16 = np.array([1.0, -2.5, 3.140625], np.float32)             # exact in bfloat16
    bf16_bits = (bf16.view(np.uint32) >> 16).astype("<u2")
    variables = [
        _var("a/f32", 0, np.array([[1.5, -2.0]], "<f4")),
        _var("a/weight", 1, np.array([[127, -64], [10, 0]], "i1")),
        _var("a/weight_scale", 0, np.array([127.0, 5.0], "<f4")),
        _var("b/weight", 2, np.array([1024, -512], "<i2")),
        _var("b/weight_scale", 0, np.array(1024.0, "<f4")),
        _var("c/i32", 3, np.array([7, -8], "<i4")),
        _var("c/f16", 4, np.array([0.5, 65504.0], "<f2")),
        _var("c/bf16", 5, bf16_bits),
        _var("c/num_heads", 2, np.array(4, "<i2")),
    ]
    (tmp_path / "model.bin").write_bytes(_file(variables, {"d/tied": "a/weight"}))
    m = read_ct2_model(tmp_path)
    assert m.spec == "TestSpec" and m.revision == 3
    assert m.dtypes == {"a/f32": "float32", "a/weight": "int8", "a/weight_scale": "float32",
                        "b/weight": "int16", "b/weight_scale": "float32", "c/i32": "int32",
                        "c/f16": "float16", "c/bf16": "bfloat16", "c/num_heads": "int16"}
    np.testing.assert_array_equal(m.get("c/bf16"), bf16)
    np.testing.assert_array_equal(m.get("c/i32"), [7, -8])
    assert int(m.get("c/num_heads")) == 4 and m.get("c/num_heads").shape == ()
    np.testing.assert_array_equal(m.dequantised("a/weight"),
                                  [[1.0, np.float32(-64) / np.float32(127)], [2.0, 0.0]])
    np.testing.assert_array_equal(m.dequantised("b/weight"), [1.0, -0.5])
    np.testing.assert_array_equal(m.dequantised("d/tied"), m.dequantised("a/weight"))
    np.testing.assert_array_equal(m.dequantised("c/f16"), [0.5, 65504.0])
    with pytest.raises(UnknownModelError, match="without a 'c/i32_scale'"):
        m.dequantised("c/i32")
    with pytest.raises(UnknownModelError, match="no variable 'nope'"):
        m.get("nope")


@pytest.mark.parametrize("data,match", [
    (_file([], {}, version=5), "binary version 5"),
    (_file([_var("x", 0, np.zeros(4, "<f4"))], {})[:-10], "truncated"),
    (_file([_var("x", 9, np.zeros(4, "<f4"))], {}), "unknown dtype code 9"),
])
def test_bad_files_are_refused_in_one_sentence(tmp_path, data, match):
    (tmp_path / "model.bin").write_bytes(data)
    with pytest.raises(UnknownModelError, match=match):
        read_ct2_model(tmp_path / "model.bin")


def test_a_translation_model_is_not_converted_as_whisper(tmp_path):
    (tmp_path / "model.bin").write_bytes(_file([_var("x", 0, np.zeros(2, "<f4"))], {},
                                               spec="TransformerSpec"))
    with pytest.raises(UnknownModelError, match="TransformerSpec, not a WhisperSpec"):
        convert_ctranslate2_whisper(tmp_path, tmp_path / "out")
    with pytest.raises(UnknownModelError, match="No CTranslate2 model file"):
        read_ct2_model(tmp_path / "absent")
