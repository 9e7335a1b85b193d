"""The Kaldi log-mel filterbank, in the two variants the families' references compute.

Two implementations, on purpose (measured on the golden fixtures, /work/shared/fixtures):
- `torch_kaldi_fbank`, a torch port of torchaudio's `compliance.kaldi.fbank`, the one BEATs
  (inside SALMONN) calls on a float64 waveform. It reproduces that reference to ~1e-7 because it
  builds the mel filters in float32 and computes in the waveform's dtype, as torchaudio does.
  kaldi-native-fbank cannot stand in for it: it refuses BEATs' 128 mel bins at a 512-point FFT
  ("num_mel_bins too large": Kaldi checks that every filter covers an FFT bin; torchaudio does
  not), and it computes in float32 only.
- `native_kaldi_fbank`, on kaldi-native-fbank (a C++ port of Kaldi's own code, float32), the
  counterpart of fairseq2n's C++ fbank that SONAR's pipeline uses. Against SONAR's fixture fbanks
  it is closer than the torch port (max |diff| 1.8e-4 vs 3.6e-4 in float32, 2.5e-4 in float64),
  and it is what the stored SONAR vectors were computed with: replacing it would move them.

Both: 25 ms povey window, 10 ms hop, DC removal, pre-emphasis 0.97, power spectrum, log mel,
no dither, `snip_edges` (frames = 1 + (n - 400) // 160 at 16 kHz). Callers scale the waveform
(both references use Kaldi's int16 range, `wav * 2**15`) and normalise the result their way.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: fewest samples that give one encoder frame of a model stacking two 25 ms fbank frames at a 10 ms
#: hop (SeamlessM4T v2's and SONAR's front ends): 400 + 160
MIN_SAMPLES = 400 + 160


def _mel_banks(num_bins: int, n_fft: int, sample_rate: float, low_freq: float = 20.0) -> torch.Tensor:
    """Kaldi triangular mel filters [num_bins, n_fft//2 + 1], built in float32 like torchaudio."""
    n_fft_bins = n_fft // 2
    high_freq = 0.5 * sample_rate
    bin_width = sample_rate / n_fft
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + b * delta
    centre = mel_low + (b + 1.0) * delta
    right = mel_low + (b + 2.0) * delta
    mel = (1127.0 * (1.0 + bin_width * torch.arange(n_fft_bins) / 700.0).log()).unsqueeze(0)
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1))  # the Nyquist bin gets no filter weight


def torch_kaldi_fbank(wav: torch.Tensor, *, num_mel_bins: int = 128, sample_rate: int = 16000,
                frame_length: int = 400, frame_shift: int = 160) -> torch.Tensor:
    """Kaldi log-mel fbank [frames, num_mel_bins] of a 1-D waveform, in the waveform's dtype.

    frames = 1 + (len - frame_length) // frame_shift (kaldi's snip_edges); a waveform shorter
    than one frame gives zero frames.
    """
    if wav.dim() != 1:
        raise ValueError(f"torch_kaldi_fbank takes a 1-D waveform, got shape {tuple(wav.shape)}")
    n = wav.shape[0]
    if n < frame_length:
        return wav.new_zeros((0, num_mel_bins))
    frames = wav.unfold(0, frame_length, frame_shift)                     # [F, 400]
    frames = frames - frames.mean(dim=1, keepdim=True)                    # remove DC offset
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)              # replicate-padded shift
    frames = frames - 0.97 * prev                                         # pre-emphasis
    window = torch.hann_window(frame_length, periodic=False, dtype=wav.dtype,
                               device=wav.device).pow(0.85)               # povey window
    n_fft = 1 << (frame_length - 1).bit_length()                          # 512
    frames = F.pad(frames * window, (0, n_fft - frame_length))
    power = torch.fft.rfft(frames).abs().pow(2.0)                         # [F, 257]
    banks = _mel_banks(num_mel_bins, n_fft, sample_rate).to(device=wav.device, dtype=wav.dtype)
    mel = power @ banks.T
    eps = torch.tensor(torch.finfo(torch.float32).eps, dtype=wav.dtype, device=wav.device)
    return torch.maximum(mel, eps).log()


def native_kaldi_fbank(scaled: np.ndarray, *, num_mel_bins: int, sample_rate: int = 16000) -> np.ndarray:
    """(T, num_mel_bins) float32 Kaldi fbank of a mono float32 waveform already in int16 range.

    kaldi-native-fbank with the Kaldi defaults above (povey window, snip_edges, no dither).
    """
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = num_mel_bins
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(sample_rate, scaled.tolist())
    fb.input_finished()
    n = fb.num_frames_ready
    if n == 0:
        return np.zeros((0, num_mel_bins), np.float32)
    return np.stack([fb.get_frame(i) for i in range(n)]).astype(np.float32)
