"""A tiny random-initialised Whisper in the transformers layout (see `common/tiny.py`)."""

from __future__ import annotations

from pathlib import Path

import torch

from actstore.ingest.adapters.common.tiny import TINY_HIDDEN, perturb_layernorms, quiet

WHISPER_LAYERS = 2
WHISPER_MAX_SOURCE_POSITIONS = 50  # 100 mel frames = 1 s window


def build_tiny_whisper(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Whisper (2 encoder layers, width 32, a 1 s window) to `out_dir`.

    `max_source_positions=50` means the encoder takes 100 mel frames, so the feature extractor
    is saved with `chunk_length=1` (1 s at 16 kHz, hop 160).
    """
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=TINY_HIDDEN, encoder_layers=WHISPER_LAYERS,
        decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=WHISPER_MAX_SOURCE_POSITIONS,
        max_target_positions=32, pad_token_id=1, bos_token_id=2, eos_token_id=3,
        decoder_start_token_id=2, begin_suppress_tokens=None, suppress_tokens=None,
    )
    config.actstore_random_init = True
    with quiet():
        model = WhisperForConditionalGeneration(config).eval()  # the hub checkpoints' layout
        perturb_layernorms(model, seed)
        model.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80, chunk_length=1).save_pretrained(out)
    return out
