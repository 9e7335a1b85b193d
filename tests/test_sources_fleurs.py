"""FLEURS from its raw layout: a tiny repo made here (TSV + tar.gz of WAVs), local dir and HF cache."""

import io
import logging
import os
import tarfile
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import soundfile as sf

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError
from actstore.ingest.sources import FleursSource, open_source


@pytest.fixture(scope="module")
def catalogue():
    return Catalogue.load()


def _tone(freq: float, sr: int = 16000, seconds: float = 0.25) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _wav(x: np.ndarray, sr: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, subtype="PCM_16", format="WAV")
    return buf.getvalue()


# id, file name, raw, normalized, phonemes, num_samples, gender -> and the WAV bytes of the file
EN_ROWS = [
    (1, "101.wav", "Hello, World!", "hello world", _wav(_tone(200))),
    (1, "102.wav", "Hello, World!", "hello world", _wav(_tone(300))),          # second speaker
    (2, "103.wav", "The cat sleeps.", "the cat sleeps", _wav(_tone(400, sr=8000), sr=8000)),
    (3, "104.wav", "Good morning.", "good morning",
     _wav(np.stack([_tone(500), np.zeros(4000, np.float32)], axis=1))),          # stereo
]


def _make_config(data: Path, config: str, rows, *, split: str = "test", extra_members=()) -> None:
    cdir = data / config
    (cdir / "audio").mkdir(parents=True)
    tsv = "".join(
        f"{sid}\t{name}\t{raw}\t{norm}\th e l o\t{len(wav)}\tFEMALE\n" for sid, name, raw, norm, wav in rows
    )
    (cdir / f"{split}.tsv").write_text(tsv, encoding="utf-8")
    with tarfile.open(cdir / "audio" / f"{split}.tar.gz", "w:gz") as tar:
        for name, payload in [(n, w) for _, n, _, _, w in rows] + list(extra_members):
            info = tarfile.TarInfo(f"{split}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


@pytest.fixture
def repo(tmp_path):
    """A google/fleurs-shaped repository: {repo}/data/{config}/..."""
    data = tmp_path / "fleurs" / "data"
    _make_config(data, "en_us", EN_ROWS)
    _make_config(data, "de_de", [(1, "201.wav", "Hallo Welt!", "hallo welt", _wav(_tone(250)))])
    return tmp_path / "fleurs"


def test_languages_ids_and_sample_ids(catalogue, repo):
    src = open_source("fleurs", catalogue=catalogue, data_dir=repo)   # split devtest -> test
    assert src.name == "fleurs" and src.split == "test"
    assert src.languages() == ["deu", "eng"]
    assert src.modalities("eng") == ["speech", "text"]
    assert src.sentence_ids("eng", "speech") == [1, 2, 3]
    assert src.sample_ids("eng", "speech", [1]) == ["fleurs:en_us:test:101.wav", "fleurs:en_us:test:102.wav"]
    assert src.sample_ids("eng", "text", [1, 3]) == ["fleurs:en_us:test:1", "fleurs:en_us:test:3"]
    assert src.texts("eng") == {1: "hello world", 2: "the cat sleeps", 3: "good morning"}
    assert src.revision().startswith("tsv-sha256:")


def test_speech_items_keep_every_recording_decoded_to_16khz(catalogue, repo, caplog):
    src = FleursSource(catalogue, repo / "data")   # the data/ directory works as well
    with caplog.at_level(logging.WARNING, logger="actstore.ingest.sources.fleurs"):
        items = {i.sample_id: i for i in src.items("eng", "speech")}
    assert sorted(items) == [f"fleurs:en_us:test:{n}.wav" for n in (101, 102, 103, 104)]
    assert [items[f"fleurs:en_us:test:{n}.wav"].sentence_id for n in (101, 102, 103, 104)] == [1, 1, 2, 3]
    for item in items.values():
        assert item.audio.dtype == np.float32 and item.audio.ndim == 1 and item.split == "test"
    np.testing.assert_allclose(items["fleurs:en_us:test:101.wav"].audio, _tone(200), atol=1 / 32768 + 1e-7)
    np.testing.assert_allclose(items["fleurs:en_us:test:104.wav"].audio, _tone(500) / 2, atol=1 / 32768)
    slow = items["fleurs:en_us:test:103.wav"].audio
    assert len(slow) == 4000                                   # 0.25 s at 16 kHz after 8 kHz
    assert "Resampled 1 FLEURS recording(s) of eng" in caplog.text


def test_text_items_one_per_sentence(catalogue, repo):
    src = FleursSource(catalogue, repo)
    items = list(src.items("eng", "text", sentence_ids=[1, 2]))
    assert [(i.sentence_id, i.text, i.sample_id) for i in items] == [
        (1, "hello world", "fleurs:en_us:test:1"), (2, "the cat sleeps", "fleurs:en_us:test:2")]


def test_resume_and_selection(catalogue, repo):
    src = FleursSource(catalogue, repo)
    got = [i.sample_id for i in src.items("eng", "speech", sentence_ids=[1, 2],
                                          skip_sample_ids={"fleurs:en_us:test:102.wav"})]
    assert got == ["fleurs:en_us:test:101.wav", "fleurs:en_us:test:103.wav"]


def test_corrupt_member_is_named_and_reading_stops_early(catalogue, tmp_path):
    data = tmp_path / "data"
    rows = EN_ROWS[:1] + [(2, "bad.wav", "x", "x", b"RIFF\x00\x00\x00\x00WAVEgarbage!!")]
    _make_config(data, "en_us", rows)
    src = FleursSource(catalogue, data)
    (ok,) = src.items("eng", "speech", sentence_ids=[1])   # stops before the corrupt member
    assert ok.sample_id == "fleurs:en_us:test:101.wav"
    with pytest.raises(DataSourceError, match=r"Cannot decode audio test/bad\.wav in .*test\.tar\.gz"):
        list(src.items("eng", "speech"))


def test_empty_audio_and_missing_member_are_errors(catalogue, tmp_path):
    data = tmp_path / "data"
    rows = [(1, "empty.wav", "x", "x", _wav(np.zeros(0, np.float32)))]
    _make_config(data, "en_us", rows)
    with pytest.raises(DataSourceError, match=r"test/empty\.wav .*zero samples"):
        list(FleursSource(catalogue, data).items("eng", "speech"))
    (data / "en_us" / "test.tsv").write_text("1\tempty.wav\tx\tx\n2\tgone.wav\ty\ty\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"lacks 1 file\(s\) listed in test\.tsv \(e\.g\. gone\.wav\)"):
        list(FleursSource(catalogue, data).items("eng", "speech", sentence_ids=[2]))


def test_missing_or_truncated_archive(catalogue, repo):
    archive = repo / "data" / "en_us" / "audio" / "test.tar.gz"
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataSourceError, match="corrupt or truncated"):
        list(FleursSource(catalogue, repo).items("eng", "speech"))
    archive.unlink()
    src = FleursSource(catalogue, repo)
    assert src.sentence_ids("eng", "speech") == [1, 2, 3]          # the TSV alone plans the run
    with pytest.raises(DataSourceError, match="audio archive .* does not exist; download it with `hf download"):
        src.items("eng", "speech")


def test_tsv_tolerance_and_errors(catalogue, tmp_path):
    data = tmp_path / "data"
    _make_config(data, "en_us", EN_ROWS[:1])
    tsv = data / "en_us" / "test.tsv"
    tsv.write_text("id\tpath\traw\n1\t101.wav\tOnly Raw Text\n", encoding="utf-8")   # header, 3 columns
    assert FleursSource(catalogue, data).texts("eng") == {1: "Only Raw Text"}
    tsv.write_text("1\t101.wav\tx\tx\nseven\t102.wav\ty\ty\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match=r"test\.tsv line 2 has a non-integer id 'seven'"):
        FleursSource(catalogue, data).sentence_ids("eng", "speech")
    tsv.write_text("1\n", encoding="utf-8")
    with pytest.raises(DataSourceError, match="line 1 has no file name column"):
        FleursSource(catalogue, data).sentence_ids("eng", "text")


def test_hub_cache_snapshot_is_the_revision(catalogue, tmp_path, monkeypatch):
    snap = "0123456789abcdef0123456789abcdef01234567"
    hub = tmp_path / "hfhome" / "hub"
    _make_config(hub / "datasets--google--fleurs" / "snapshots" / snap / "data", "en_us", EN_ROWS[:2])
    (hub / "datasets--google--fleurs" / "refs").mkdir()
    (hub / "datasets--google--fleurs" / "refs" / "main").write_text(snap)
    # huggingface_hub reads $HF_HUB_CACHE / $HF_HOME when imported: point its resolved cache here
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    src = FleursSource(catalogue)
    assert src.revision() == snap and src.languages() == ["eng"]
    assert len(list(src.items("eng", "speech"))) == 2
    other = "fedcba9876543210fedcba9876543210fedcba98"
    _make_config(hub / "datasets--google--fleurs" / "snapshots" / other / "data", "fr_fr", EN_ROWS[2:3])
    assert FleursSource(catalogue, revision=other).languages() == ["fra"]
    with pytest.raises(DataSourceError, match="FLEURS revision 1111111111111111111111111111111111111111 is not in"):
        FleursSource(catalogue, revision="1" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(DataSourceError, match="FLEURS is not in the HF cache .*hf download google/fleurs"):
        FleursSource(catalogue)


def test_hub_cache_without_refs_uses_the_newest_snapshot(catalogue, tmp_path, monkeypatch):
    snapshots = tmp_path / "hub" / "datasets--google--fleurs" / "snapshots"
    for i, (snap, config, rows) in enumerate((("a" * 40, "en_us", EN_ROWS[:2]), ("b" * 40, "fr_fr", EN_ROWS[2:3]))):
        _make_config(snapshots / snap / "data", config, rows)
        for f in (snapshots / snap).rglob("*"):
            os.utime(f, (1_000_000 + i * 1000, 1_000_000 + i * 1000))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    src = FleursSource(catalogue)
    assert src.revision() == "b" * 40 and src.languages() == ["fra"]


def test_bad_split_and_directory(catalogue, tmp_path):
    with pytest.raises(DataSourceError, match="FLEURS has no split 'val'"):
        FleursSource(catalogue, tmp_path, split="val")
    with pytest.raises(DataSourceError, match="does not exist"):
        FleursSource(catalogue, tmp_path / "nope")
