"""SONAR's speech front end: 80-bin Kaldi fbank, per-utterance standardisation, frame stacking.

What SONAR's `SpeechToEmbeddingModelPipeline` feeds its speech encoders (fairseq2n
`WaveformToFbankConverter(num_mel_bins=80, waveform_scale=2**15, standardize=True)` then a
`Collater(pad_value=0, pad_to_multiple=2)`):

1. the 16 kHz mono waveform in [-1, 1] is scaled by 2^15 (Kaldi's int16 range);
2. Kaldi fbank: 25 ms povey window, 10 ms hop, pre-emphasis 0.97, DC removal, 80 mel bins,
   log power, **no dither**, `snip_edges` -> T = 1 + (n - 400) // 160 frames;
3. standardisation per utterance and per mel bin: (x - mean) / std with the unbiased std
   (computed over that utterance's T frames only, so padding never leaks into it);
4. the encoder frontend stacks pairs of frames (T // 2 frames of 160 values); an odd trailing
   frame is dropped (the collater pads to an even length with zeros, the stack never reads it).

Here step 2 is kaldi-native-fbank (`common.kaldi_fbank.native_kaldi_fbank`, a C++ port of Kaldi's
fbank, float32): it matches fairseq2n's fbank to ~2.5e-4 absolute (the fixture README measures it), which moves a sentence embedding by
~1e-5. Only 16 kHz audio is accepted (SONAR's pipeline does not resample either); actstore's
sources already deliver 16 kHz mono float32, and anything else is refused with an error rather
than silently resampled.
"""

from __future__ import annotations

import numpy as np

from actstore.errors import DataSourceError
from actstore.ingest.adapters.common.kaldi_fbank import MIN_SAMPLES, native_kaldi_fbank  # noqa: F401
from actstore.ingest.items import SAMPLE_RATE

NUM_MEL_BINS = 80
WAVEFORM_SCALE = 2.0 ** 15


def kaldi_fbank(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(T, 80) float32 log-mel fbank of a mono waveform in [-1, 1], as fairseq2n computes it."""
    if sample_rate != SAMPLE_RATE:
        raise DataSourceError(f"SONAR's speech front end takes 16 kHz audio, got {sample_rate} Hz; "
                              "resample the audio to 16 kHz before encoding.")
    wav = np.asarray(waveform, dtype=np.float32)
    if wav.ndim != 1:
        raise DataSourceError(f"SONAR's speech front end takes mono audio (a 1-D array), got shape "
                              f"{wav.shape}; mix the channels down to mono first.")
    return native_kaldi_fbank(wav * WAVEFORM_SCALE, num_mel_bins=NUM_MEL_BINS, sample_rate=SAMPLE_RATE)


def standardize(fbank: np.ndarray) -> np.ndarray:
    """Per-bin (x - mean) / std over the utterance's frames, unbiased std (as fairseq2n)."""
    x = np.asarray(fbank, dtype=np.float32)
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, ddof=1, keepdims=True) if x.shape[0] > 1 else np.ones_like(mean)
    return ((x - mean) / std).astype(np.float32)


def sonar_fbank(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Standardised (T, 80) fbank: the per-utterance input of a SONAR speech encoder."""
    return standardize(kaldi_fbank(waveform, sample_rate))


def collate(fbanks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pad (T_i, 80) fbanks with zeros to (B, T_max rounded up to even, 80) plus lengths (B,)."""
    lengths = np.array([f.shape[0] for f in fbanks], dtype=np.int64)
    t_max = int(lengths.max()) if len(fbanks) else 0
    t_max += t_max % 2
    out = np.zeros((len(fbanks), t_max, NUM_MEL_BINS), np.float32)
    for b, f in enumerate(fbanks):
        out[b, : f.shape[0]] = f
    return out, lengths
