"""espeak-ng speech for FLORES text: real synthesis into a temporary cache, resume, reporting."""

import io
import logging
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError
from actstore.ingest.sources import EspeakSynthesizer, FloresSource, open_source

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")

SENTENCES = {
    "eng_Latn": ["Hello world.", "The cat sleeps.", "Good morning to you."],
    "deu_Latn": ["Guten Tag.", "Die Katze schläft.", "Guten Morgen."],
    "khm_Khmr": ["សួស្តី", "ឆ្មា", "អរុណសួស្តី"],
}


@pytest.fixture(scope="module")
def catalogue():
    return Catalogue.load()


@pytest.fixture
def flores_dir(tmp_path):
    (tmp_path / "devtest").mkdir()
    for code, lines in SENTENCES.items():
        (tmp_path / "devtest" / f"{code}.devtest").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_speech_is_16khz_float32_non_silent_and_cached(catalogue, flores_dir, tmp_path):
    cache = tmp_path / "cache"
    src = open_source("flores", catalogue=catalogue, data_dir=flores_dir, cache_dir=cache)
    assert src.modalities("eng") == ["speech", "text"]
    items = list(src.items("eng", "speech"))
    assert [i.sample_id for i in items] == [f"espeak-ng:en-us:devtest:eng:{i}" for i in (1, 2, 3)]
    for item in items:
        assert item.audio.dtype == np.float32 and item.audio.ndim == 1
        assert 0.3 < len(item.audio) / 16000 < 5.0   # a short sentence lasts about a second
        assert _rms(item.audio) > 0.01               # not silence
    assert src.synth.synthesised == 3 and src.synth.cache_hits == 0
    files = sorted(cache.rglob("*.flac"))
    assert len(files) == 3 and not list(cache.rglob(".tmp-*"))
    mtimes = [f.stat().st_mtime_ns for f in files]

    again = open_source("flores", catalogue=catalogue, data_dir=flores_dir, cache_dir=cache)
    cached = list(again.items("eng", "speech"))
    assert again.synth.synthesised == 0 and again.synth.cache_hits == 3   # no subprocess ran
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    for a, b in zip(items, cached):
        assert np.array_equal(a.audio, b.audio)


def test_waveform_is_espeak_output_resampled_320_441(tmp_path):
    synth = EspeakSynthesizer(tmp_path)
    audio = synth.synthesize("The cat sleeps.", "en-us")
    raw = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout"], input=b"The cat sleeps.",
                         capture_output=True, check=True).stdout
    x, sr = sf.read(io.BytesIO(raw), dtype="float32")
    assert sr == 22050
    expected = resample_poly(x, 320, 441).astype(np.float32)
    assert len(audio) == int(np.ceil(len(x) * 320 / 441))
    np.testing.assert_allclose(audio, expected, atol=1e-6)
    assert synth.cache_path("The cat sleeps.", "en-us").parent.name == "en-us"
    assert synth.cache_path("The cat sleeps.", "en-us") != synth.cache_path("The cat sleeps.", "en-gb")


def test_language_without_voice_is_reported_not_fatal(catalogue, flores_dir, tmp_path, caplog):
    src = FloresSource(catalogue, flores_dir, cache_dir=tmp_path / "c")
    with caplog.at_level(logging.WARNING):
        assert src.modalities("khm") == ["text"]
    assert src.languages_without_speech == ["khm"]
    assert "No espeak-ng voice for khm" in caplog.text
    assert len(list(src.items("khm", "text"))) == 3
    with pytest.raises(DataSourceError, match="has no speech for 'khm'"):
        src.items("khm", "speech")


def test_shipped_study_languages_without_voice(catalogue, tmp_path):
    src = FloresSource(catalogue, cache_dir=tmp_path)
    assert src.languages_without_speech == ["khm", "lao", "sna"]
    assert src.revision().endswith(f"+espeak-ng:{src.synth.version}")


def test_resume_and_selection_synthesise_only_what_is_missing(catalogue, flores_dir, tmp_path):
    src = FloresSource(catalogue, flores_dir, cache_dir=tmp_path / "c")
    stored = {"espeak-ng:de:devtest:deu:1"}
    items = list(src.items("deu", "speech", sentence_ids=[1, 2], skip_sample_ids=stored))
    assert [i.sentence_id for i in items] == [2]
    assert src.synth.synthesised == 1
    assert src.sample_ids("deu", "speech", [3]) == ["espeak-ng:de:devtest:deu:3"]


def test_real_shipped_sentence(catalogue, tmp_path):
    src = FloresSource(catalogue, cache_dir=tmp_path)
    (item,) = src.items("fra", "speech", sentence_ids=[1])
    assert item.sample_id == "espeak-ng:fr-fr:devtest:fra:1"
    assert 3.0 < len(item.audio) / 16000 < 15.0 and _rms(item.audio) > 0.01


def test_parallel_results_come_in_input_order(tmp_path):
    texts = ["One.", "This sentence is a good deal longer than the others.", "Two.", "Three.", "Four five six."]
    synth = EspeakSynthesizer(tmp_path, workers=2)
    parallel = list(synth.synthesize_many(texts, "en-us"))
    assert [len(a) for a in parallel] == [len(synth.synthesize(t, "en-us")) for t in texts]
    assert np.argmax([len(a) for a in parallel]) == 1
    gen = synth.synthesize_many(texts, "en-us")
    next(gen)
    gen.close()   # stopping early shuts the pool down without hanging


def test_corrupt_cache_file_is_resynthesised(tmp_path):
    synth = EspeakSynthesizer(tmp_path)
    path = synth.cache_path("Hello world.", "en-us")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a FLAC file")
    audio = synth.synthesize("Hello world.", "en-us")
    assert synth.synthesised == 1 and _rms(audio) > 0.01
    assert np.array_equal(synth.synthesize("Hello world.", "en-us"), audio)
    assert synth.cache_hits == 1 and sf.info(str(path)).samplerate == 22050


def test_missing_espeak_gives_the_install_command(catalogue, flores_dir, tmp_path):
    synth = EspeakSynthesizer(tmp_path, binary="espeak-ng-not-installed-here")
    src = FloresSource(catalogue, flores_dir, synthesizer=synth)
    assert src.modalities("eng") == ["speech", "text"]   # asking for speech explains the fix
    with pytest.raises(DataSourceError, match="apt-get install espeak-ng"):
        src.items("eng", "speech")   # eagerly, before any item is pulled
    assert len(list(src.items("eng", "text"))) == 3


def test_unknown_voice_means_text_only(tmp_path, flores_dir):
    csv = tmp_path / "langs.csv"
    csv.write_text("code,espeak_voice\neng,xx-no-such-voice\n", encoding="utf-8")
    src = FloresSource(Catalogue.load(csv), flores_dir, cache_dir=tmp_path / "c")
    assert "eng" in src.languages_without_speech
    with pytest.raises(DataSourceError, match="has no voice 'xx-no-such-voice'"):
        EspeakSynthesizer(tmp_path).check("xx-no-such-voice")
