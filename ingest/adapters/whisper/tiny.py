"""A tiny random-initialised Whisper in the transformers layout (see `common/tiny.py`)."""

from __future__ import annotations

from pathlib import Path

import torch

from actstore.ingest.adapters.common.tiny import TINY_HIDDEN, perturb_layernorms, quiet

WHISPER_LAYERS = 2
WHISPER_MAX_SOURCE_POSITIONS = 50  # 100 mel frames = 1 s window


def _tiny_tokenizer():
    """A byte-level tokenizer with Whisper's special tokens and no merges (every byte a token):
    enough for the teacher-forced decoder to read any text offline. Language tokens: Whisper's
    own list plus the catalogue's FLEURS prefixes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    from actstore.catalogue import Catalogue

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    codes = set(LANGUAGES) | {lang.short_code for lang in Catalogue.load()}
    specials = (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in sorted(codes)]
                + ["<|translate|>", "<|transcribe|>", "<|notimestamps|>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", additional_special_tokens=specials)
    return fast


def build_tiny_whisper(out_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny random Whisper (2 encoder layers, 1 decoder layer, width 32, a 1 s window, a
    byte-level tokenizer) to `out_dir`.

    `max_source_positions=50` means the encoder takes 100 mel frames, so the feature extractor
    is saved with `chunk_length=1` (1 s at 16 kHz, hop 160).
    """
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_tokenizer()
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=TINY_HIDDEN, encoder_layers=WHISPER_LAYERS,
        decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=WHISPER_MAX_SOURCE_POSITIONS,
        max_target_positions=256, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"), begin_suppress_tokens=None, suppress_tokens=None,
    )
    config.actstore_random_init = True
    with quiet():
        model = WhisperForConditionalGeneration(config).eval()  # the hub checkpoints' layout
        perturb_layernorms(model, seed)
        model.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80, chunk_length=1).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
