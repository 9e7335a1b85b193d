"""User manifests (CSV / Parquet): items, defaults, and one clear error per bad row."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError
from actstore.ingest.sources import ManifestSource, open_source


@pytest.fixture(scope="module")
def catalogue():
    return Catalogue.load()


def _tone(freq: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(sr // 4) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


HEADER = "sentence_id,lang,modality,text,audio,split\n"


@pytest.fixture
def mdir(tmp_path):
    (tmp_path / "wav").mkdir()
    sf.write(tmp_path / "wav" / "en1a.wav", _tone(200), 16000, subtype="FLOAT")
    sf.write(tmp_path / "wav" / "en1b.wav", _tone(300), 16000, subtype="FLOAT")
    sf.write(tmp_path / "wav" / "de1.flac", _tone(400, 8000), 8000)
    return tmp_path


def _write(mdir, body: str, header: str = HEADER, name: str = "m.csv"):
    path = mdir / name
    path.write_text(header + body, encoding="utf-8")
    return path


GOOD = (
    "1,eng,text,Hello world.,,\n"
    "2,eng,text,The cat sleeps.,,\n"
    "1,eng,speech,,wav/en1a.wav,\n"
    "1,eng,speech,,wav/en1b.wav,\n"
    "1,deu,speech,Hallo Welt.,wav/de1.flac,dev\n"
)


def test_csv_manifest_items_and_defaults(catalogue, mdir):
    src = open_source("manifest", catalogue=catalogue, data_dir=_write(mdir, GOOD))
    assert src.name == "manifest"
    assert src.languages() == ["deu", "eng"]
    assert src.modalities("eng") == ["speech", "text"] and src.modalities("deu") == ["speech"]
    assert src.sentence_ids("eng", "speech") == [1]
    assert src.sample_ids("eng", "speech", [1]) == [
        "manifest:devtest:eng:wav/en1a.wav", "manifest:devtest:eng:wav/en1b.wav"]
    speech = list(src.items("eng", "speech", skip_sample_ids={"manifest:devtest:eng:wav/en1a.wav"}))
    assert [i.sample_id for i in speech] == ["manifest:devtest:eng:wav/en1b.wav"]
    np.testing.assert_array_equal(speech[0].audio, _tone(300))
    (de,) = src.items("deu", "speech")
    assert de.split == "dev" and len(de.audio) == 4000 and de.audio.dtype == np.float32   # 8 kHz resampled
    text = list(src.items("eng", "text", sentence_ids=[2]))
    assert [(t.sentence_id, t.text, t.sample_id) for t in text] == [(2, "The cat sleeps.", "manifest:devtest:eng:2")]
    assert src.texts("eng") == {1: "Hello world.", 2: "The cat sleeps."}
    assert src.texts("deu") == {1: "Hallo Welt."}   # transcript of a speech row
    assert src.revision().startswith("sha256:")


def test_parquet_manifest_with_sample_ids(catalogue, mdir):
    table = pa.table({
        "sentence_id": [7, 7], "lang": ["eng", "eng"], "modality": ["speech", "text"],
        "audio": ["wav/en1a.wav", None], "text": [None, "Seven."], "sample_id": ["rec-7", "txt-7"],
    })
    pq.write_table(table, mdir / "m.parquet")
    src = ManifestSource(catalogue, mdir / "m.parquet", split="test")
    assert src.sample_ids("eng", "speech", [7]) == ["rec-7"]
    (t,) = src.items("eng", "text")
    assert (t.sample_id, t.text, t.split) == ("txt-7", "Seven.", "test")


@pytest.mark.parametrize(
    "body, message",
    [
        ("1,eng,text,Hi.,,\n1,xxx,text,Hi.,,\n", "line 3: unknown language 'xxx'"),
        ("1,eng,text,,,\n", "line 2: text is empty"),
        ("1,eng,speech,,wav/missing.wav,\n", r"line 2: audio file .*missing\.wav does not exist"),
        ("1.5,eng,text,Hi.,,\n", "line 2: sentence_id '1.5' is not an integer"),
        ("one,eng,text,Hi.,,\n", "line 2: sentence_id 'one' is not an integer"),
        ("1,eng,video,Hi.,,\n", "line 2: modality 'video' is not speech or text"),
        ("1,eng,speech,,,\n", "line 2: a speech row has no audio path"),
        ("1,eng,text,Hi.,,\n1,eng,text,Hi again.,,\n", "line 3: sample_id 'manifest:devtest:eng:1' repeats line 2"),
        ("", "has no rows"),
    ],
)
def test_bad_rows_name_the_row_and_the_fix(catalogue, mdir, body, message):
    with pytest.raises(DataSourceError, match=message):
        ManifestSource(catalogue, _write(mdir, body))


def test_bad_files(catalogue, mdir):
    with pytest.raises(DataSourceError, match="lacks column"):
        ManifestSource(catalogue, _write(mdir, "1,eng,Hi.\n", header="sentence_id,lang,text\n"))
    with pytest.raises(DataSourceError, match="neither a 'text' nor an 'audio' column"):
        ManifestSource(catalogue, _write(mdir, "1,eng,text\n", header="sentence_id,lang,modality\n"))
    with pytest.raises(DataSourceError, match="neither .csv, .tsv nor .parquet"):
        ManifestSource(catalogue, _write(mdir, GOOD, name="m.json"))
    with pytest.raises(DataSourceError, match="does not exist"):
        ManifestSource(catalogue, mdir / "nope.csv")
    with pytest.raises(DataSourceError, match="needs a file"):
        open_source("manifest", catalogue=catalogue)
    (mdir / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataSourceError, match="Cannot read Parquet manifest"):
        ManifestSource(catalogue, mdir / "bad.parquet")


def test_corrupt_audio_is_reported_when_read(catalogue, mdir):
    (mdir / "wav" / "broken.wav").write_bytes(b"RIFFxxxxWAVEnothing")
    src = ManifestSource(catalogue, _write(mdir, "1,eng,speech,,wav/broken.wav,\n"))
    with pytest.raises(DataSourceError, match=r"Cannot decode audio .*broken\.wav"):
        list(src.items("eng", "speech"))


def test_user_language_from_catalogue_csv(mdir, tmp_path):
    langs = tmp_path / "langs.csv"
    langs.write_text("code,name\nxho,Xhosa\n", encoding="utf-8")
    src = ManifestSource(Catalogue.load(langs), _write(mdir, "1,xho,text,Molo.,,\n"))
    assert src.languages() == ["xho"]


def test_resampled_manifest_audio_is_reported_once_per_language(catalogue, mdir, caplog):
    """8 kHz files are resampled to 16 kHz with one WARNING per language naming count and rate."""
    sf.write(mdir / "wav" / "de2.wav", _tone(500, 8000), 8000)
    body = GOOD + "2,deu,speech,,wav/de2.wav,\n"
    src = open_source("manifest", catalogue=catalogue, data_dir=_write(mdir, body))
    with caplog.at_level("WARNING", logger="actstore"):
        assert len(list(src.items("deu", "speech"))) == 2
        list(src.items("eng", "speech"))  # 16 kHz: nothing to say
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"Resampled 2 manifest recording(s) of deu from 8000 Hz to 16000 Hz ({mdir / 'm.csv'})."]
