"""Decode and normalise audio to what every speech adapter expects: mono float32 at 16 kHz.

Policy (the same for every source):
- decode with soundfile (WAV, FLAC, OGG; no FFmpeg/torchcodec needed);
- integer PCM becomes float32 in [-1, 1] (soundfile scales by 2**(bits-1));
- several channels -> their mean (a downmix keeps the level of identical channels);
- another sample rate -> resampled to 16 kHz, and we say so (an INFO line per file here, and one
  WARNING per language read with the count: every source reads through `ResampleTally`), because
  resampling changes the signal the model sees;
- unreadable, corrupt, empty or non-finite audio -> `DataSourceError` naming the file.
"""

from __future__ import annotations

import io
import logging
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from actstore.errors import DataSourceError
from actstore.ingest.items import SAMPLE_RATE

log = logging.getLogger(__name__)


def resample(x: np.ndarray, sr_from: int, sr_to: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a 1-D signal from `sr_from` to `sr_to` Hz by polyphase filtering.

    The ratio is reduced to up/down = (sr_to/g)/(sr_from/g) with g = gcd(sr_from, sr_to), e.g.
    22050 -> 16000 is 320/441 and 8000 -> 16000 is 2/1, so the output has exactly
    ceil(len(x) * up / down) samples; the Kaiser-windowed FIR (scipy's default) low-passes at the
    lower Nyquist frequency, so nothing aliases when downsampling. Returns float32.
    """
    if sr_from <= 0 or sr_to <= 0:
        raise DataSourceError(
            f"Cannot resample from {sr_from} Hz to {sr_to} Hz; both sample rates must be positive."
        )
    x = np.asarray(x, dtype=np.float32)
    if sr_from == sr_to:
        return np.ascontiguousarray(x)
    g = gcd(int(sr_from), int(sr_to))
    y = resample_poly(x, int(sr_to) // g, int(sr_from) // g)
    return np.ascontiguousarray(y, dtype=np.float32)


def load_audio(source: str | Path | bytes, *, name: str | None = None) -> np.ndarray:
    """Decode a file path or the bytes of an audio file to mono float32 at 16 kHz.

    `name` is what error messages call the audio (e.g. the member name inside a tar archive);
    it defaults to the path. Raises `DataSourceError` for unreadable, corrupt, empty or
    NaN/inf-containing audio.
    """
    return decode_audio(source, name=name)[0]


def decode_audio(source: str | Path | bytes, *, name: str | None = None) -> tuple[np.ndarray, int]:
    """Like `load_audio`, but also return the file's original sample rate (to count resamples)."""
    if name is None:
        name = str(source) if not isinstance(source, bytes) else "<audio bytes>"
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise DataSourceError(f"Audio {name} is an empty file; replace it with a valid recording.")
        handle: object = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise DataSourceError(f"Audio file {name} does not exist; check the path.")
        handle = str(path)
    try:
        data, sr = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise DataSourceError(
            f"Cannot decode audio {name} ({err}); replace it with a valid WAV/FLAC/OGG file."
        ) from None
    if data.shape[0] == 0:
        raise DataSourceError(f"Audio {name} has zero samples; replace it with a non-empty recording.")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise DataSourceError(
            f"Audio {name} contains NaN or infinite samples; re-export it as finite PCM or float audio."
        )
    if sr != SAMPLE_RATE:
        log.info("Resampled audio %s from %d Hz to %d Hz.", name, sr, SAMPLE_RATE)
        mono = resample(mono, sr, SAMPLE_RATE)
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr)


class ResampleTally:
    """Decodes one language's recordings of a source and warns ONCE with the count resampled.

    Every source that reads recorded audio (FLEURS archives, manifest files) decodes through a
    tally, so 8 kHz telephone audio never reaches a 16 kHz model silently, and a thousand files
    give one warning, not a thousand.
    """

    def __init__(self, what: str, lang: str, where: object):
        self.what, self.lang, self.where = what, lang, where
        self.resampled = 0
        self.rates: set[int] = set()

    def decode(self, source: str | Path | bytes, *, name: str | None = None) -> np.ndarray:
        audio, sr = decode_audio(source, name=name)
        if sr != SAMPLE_RATE:
            self.resampled += 1
            self.rates.add(sr)
        return audio

    def __enter__(self) -> "ResampleTally":
        return self

    def __exit__(self, *exc) -> None:
        if self.resampled:
            rates = ", ".join(f"{r} Hz" for r in sorted(self.rates))
            log.warning("Resampled %d %s recording(s) of %s from %s to %d Hz (%s).",
                        self.resampled, self.what, self.lang, rates, SAMPLE_RATE, self.where)
