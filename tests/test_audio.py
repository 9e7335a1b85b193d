"""Audio decoding and resampling: known signals in, known signals out; bad audio names itself."""

import io
import logging

import numpy as np
import pytest
import soundfile as sf

from actstore.errors import DataSourceError
from actstore.ingest.sources.audio import decode_audio, load_audio, resample


def _sine(freq: float, sr: int, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spectrum)])


def _wav_bytes(x: np.ndarray, sr: int, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, subtype=subtype, format=fmt)
    return buf.getvalue()


def test_resample_22050_to_16000_has_exact_length_and_keeps_pitch():
    x = _sine(440.0, 22050, seconds=1.0)
    y = resample(x, 22050, 16000)
    assert y.dtype == np.float32
    assert len(y) == int(np.ceil(len(x) * 320 / 441)) == 16000
    assert abs(_peak_hz(y, 16000) - 440.0) <= 1.0
    # a tone well below both Nyquist frequencies keeps its amplitude (RMS of 0.5 * sin)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_removes_content_above_the_new_nyquist():
    x = _sine(10000.0, 22050, seconds=1.0)  # above 8 kHz: must not alias into the output
    y = resample(x, 22050, 16000)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 0.005  # < 1.5% of the input RMS (-37 dB)


def test_resample_same_rate_is_identity_and_bad_rates_are_errors():
    x = _sine(100.0, 16000)
    assert np.array_equal(resample(x, 16000, 16000), x)
    with pytest.raises(DataSourceError, match="sample rates must be positive"):
        resample(x, 0, 16000)


def test_load_audio_path_roundtrip_int16(tmp_path):
    x = _sine(300.0, 16000)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000, subtype="PCM_16")
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1 and y.flags.c_contiguous
    np.testing.assert_allclose(y, x, atol=1 / 32768 + 1e-7)


def test_load_audio_bytes_flac_and_stereo_is_mean():
    left, right = _sine(300.0, 16000, amp=0.6), _sine(300.0, 16000, amp=0.2)
    data = _wav_bytes(np.stack([left, right], axis=1), 16000, fmt="FLAC")
    y = load_audio(data, name="stereo.flac")
    np.testing.assert_allclose(y, (left + right) / 2, atol=2 / 32768)


def test_load_audio_other_rate_is_resampled_and_said(caplog):
    x = _sine(440.0, 8000, seconds=1.0)
    with caplog.at_level(logging.INFO, logger="actstore.ingest.sources.audio"):
        y, sr = decode_audio(_wav_bytes(x, 8000), name="slow.wav")
    assert sr == 8000
    assert len(y) == 16000
    assert abs(_peak_hz(y, 16000) - 440.0) <= 1.0
    assert "slow.wav from 8000 Hz to 16000 Hz" in caplog.text


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "empty file"),
        (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", "Cannot decode audio bad.wav"),
        (_wav_bytes(np.zeros(0, dtype=np.float32), 16000), "zero samples"),
        (_wav_bytes(np.array([0.1, np.nan, 0.2], dtype=np.float32), 16000, subtype="FLOAT"), "NaN"),
    ],
)
def test_bad_audio_raises_naming_it(payload, message):
    with pytest.raises(DataSourceError, match=message) as err:
        load_audio(payload, name="bad.wav")
    assert "bad.wav" in str(err.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
