"""Tiny random-initialised models for tests and the offline demo.

Each builder writes a directory that the real adapters load exactly as they load a hub model
(`config.json`, `model.safetensors`, a feature extractor and/or a tokenizer), so the tests and
`make demo` exercise the real loading, preprocessing and hook code, only with small widths.

Every config carries `actstore_random_init=True`: the adapters copy it into
`ModelInfo.random_init`, and every stored row and report from such a model is labelled
"random-init". Numbers from these models say nothing about language; they only prove plumbing.

Why the LayerNorms are perturbed: a fresh LayerNorm has weight 1 and bias 0, which hides a
class of padding bugs (a zeroed padded frame stays zero after a bias-free LayerNorm, but becomes
`bias` after a real one). Random affine parameters make the padded-batch tests as strict on
these models as they would be on real weights.

Tokenizer of the tiny SeamlessM4T: a BPE trained with the `tokenizers` library on the texts the
demo will ingest (FLORES devtest by default), with an initial alphabet of every character seen,
so Arabic, Devanagari, Han or Ethiopic text becomes real tokens, never all-UNK. It is wrapped in
`SeamlessM4TTokenizer(vocab=..., merges=...)` (in-memory vocabulary: the `vocab_file=` route
silently builds a 6-token vocabulary) with one `__xxx__` language token per catalogue language,
so the adapter's `src_lang` handling is the same code path as for the real model.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

TINY_HIDDEN = 32
SEAMLESS_SPEECH_LAYERS = 4
SEAMLESS_TEXT_LAYERS = 4  # as many as speech layers, so every layer has a cross-modal pair
WHISPER_LAYERS = 2
WHISPER_MAX_SOURCE_POSITIONS = 50  # 100 mel frames = 1 s window
BERT_LAYERS = 2

_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def _quiet():
    """transformers' logs and progress bars off while building (they are noise here)."""
    from actstore.ingest.adapters._hf import quiet_transformers

    return quiet_transformers()


def _perturb_layernorms(model: torch.nn.Module, seed: int) -> None:
    """Give every LayerNorm a random affine map (see module docstring for why)."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) and module.weight is not None:
                module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=gen))
                if module.bias is not None:
                    module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=gen))


def _flores_texts() -> list[str]:
    """All shipped FLORES devtest sentences (the demo corpus)."""
    from actstore.ingest.sources.flores import shipped_flores_dir

    root = shipped_flores_dir() / "devtest"
    texts: list[str] = []
    for f in sorted(root.glob("*.devtest")):
        texts.extend(line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip())
    return texts


def _catalogue_lang_codes() -> list[str]:
    """ISO 639-3 codes of the study's catalogue (the shipped language table)."""
    from actstore.catalogue import Catalogue

    return Catalogue.load().codes


def _train_bpe(texts: Iterable[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a Metaspace BPE (the SeamlessM4T tokenizer's pre-tokenisation) on `texts`.

    The initial alphabet is every character in the corpus, so no character of the corpus maps
    to `<unk>`.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    texts = [unicodedata.normalize("NFKC", t) for t in texts]
    alphabet = sorted({ch for t in texts for ch in t if not ch.isspace()})
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=_SPECIALS,
                                  initial_alphabet=alphabet, limit_alphabet=len(alphabet) + 1,
                                  show_progress=False)
    # merges learnt from every 4th sentence of a big corpus (keeps the build ~1 s); the
    # alphabet still comes from all of it, so no character of the corpus becomes <unk>
    tok.train_from_iterator(texts[::4] if len(texts) > 5000 else texts, trainer=trainer)
    model_json = json.loads(tok.to_str())["model"]  # vocab and merges live in the JSON state
    vocab: dict[str, int] = model_json["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_json["merges"]]
    return vocab, merges


def build_tiny_seamless_m4t_v2(out_dir: str | Path, *, seed: int = 0,
                               corpus_texts: list[str] | None = None,
                               vocab_size: int = 8000) -> Path:
    """Write a tiny random SeamlessM4T v2 to `out_dir`.

    4 speech and 4 text layers (every layer has a cross-modal pair), width 32, one speech
    attention head: the relative-position attention costs B x heads x T^2, and T is ~850 frames
    for a FLORES sentence, so one head keeps the offline demo's speech ingest fast.

    The whole model is saved (text decoder, t2u model and vocoder included, all tiny) so the
    directory has the real checkpoint layout and the adapter's "load the encoders only" path is
    tested. `corpus_texts` trains the tokenizer (default: all shipped FLORES devtest text).
    """
    from transformers import (SeamlessM4TFeatureExtractor, SeamlessM4TTokenizer,
                              SeamlessM4Tv2Config, SeamlessM4Tv2Model)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts if corpus_texts is not None else _flores_texts()
    vocab, merges = _train_bpe(texts, vocab_size)
    lang_tokens = sorted({f"__{c}__" for c in _catalogue_lang_codes()} | {"__eng__", "__fra__"})
    tokenizer = SeamlessM4TTokenizer(vocab=vocab, merges=merges, src_lang="eng", tgt_lang="fra",
                                     additional_special_tokens=lang_tokens)
    n_vocab = len(tokenizer)

    torch.manual_seed(seed)
    h = TINY_HIDDEN
    config = SeamlessM4Tv2Config(
        vocab_size=n_vocab, t2u_vocab_size=32, char_vocab_size=64, hidden_size=h,
        encoder_layers=SEAMLESS_TEXT_LAYERS, encoder_ffn_dim=64, encoder_attention_heads=4,
        decoder_layers=1, decoder_ffn_dim=64, decoder_attention_heads=4,
        speech_encoder_layers=SEAMLESS_SPEECH_LAYERS, speech_encoder_attention_heads=1,
        speech_encoder_intermediate_size=64, conv_depthwise_kernel_size=5,
        t2u_encoder_layers=1, t2u_decoder_layers=1, t2u_encoder_ffn_dim=32, t2u_decoder_ffn_dim=32,
        t2u_encoder_attention_heads=2, t2u_decoder_attention_heads=2,
        t2u_variance_predictor_embed_dim=h, t2u_variance_predictor_hidden_dim=16,
        unit_hifi_gan_vocab_size=16, unit_embed_dim=16, lang_embed_dim=4, spkr_embed_dim=4,
        upsample_initial_channel=8, upsample_rates=[2, 2], upsample_kernel_sizes=[4, 4],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]], vocoder_num_langs=2,
        vocoder_num_spkrs=2, max_position_embeddings=512, t2u_max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
    )
    config.actstore_random_init = True
    with _quiet():
        model = SeamlessM4Tv2Model(config).eval()
        _perturb_layernorms(model, seed)
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    SeamlessM4TFeatureExtractor().save_pretrained(out)
    return out


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
    with _quiet():
        model = WhisperForConditionalGeneration(config).eval()  # the hub checkpoints' layout
        _perturb_layernorms(model, seed)
        model.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80, chunk_length=1).save_pretrained(out)
    return out


def build_tiny_bert(out_dir: str | Path, seed: int = 0,
                    corpus_texts: list[str] | None = None) -> Path:
    """Write a tiny random BERT (2 layers, width 32) with a WordPiece tokenizer to `out_dir`.

    The WordPiece vocabulary is trained on `corpus_texts` (default: a few shipped FLORES
    languages) so that test text does not tokenize to all-UNK.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts if corpus_texts is not None else _flores_texts()[:3036]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=1000, special_tokens=specials,
                                                             show_progress=False))
    from tokenizers import processors

    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=128)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=TINY_HIDDEN,
                        num_hidden_layers=BERT_LAYERS, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=128, pad_token_id=tok.token_to_id("[PAD]"))
    config.actstore_random_init = True
    with _quiet():
        model = BertModel(config).eval()
        _perturb_layernorms(model, seed)
        model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


def chirp(n_samples: int, *, f0: float = 200.0, f1: float = 2000.0, seed: int = 0,
          noise: float = 0.01) -> np.ndarray:
    """A deterministic linear chirp plus a little seeded noise: float32 mono at 16 kHz."""
    t = np.arange(n_samples, dtype=np.float64) / 16_000
    dur = max(n_samples / 16_000, 1e-9)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur))
    rng = np.random.default_rng(seed)
    return (0.5 * np.sin(phase) + noise * rng.standard_normal(n_samples)).astype(np.float32)
