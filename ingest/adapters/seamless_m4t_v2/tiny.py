"""A tiny random-initialised SeamlessM4T v2 in the transformers layout (see `common/tiny.py`).

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

import torch

from actstore.ingest.adapters.common.tiny import TINY_HIDDEN, flores_texts, perturb_layernorms, quiet

SEAMLESS_SPEECH_LAYERS = 4
SEAMLESS_TEXT_LAYERS = 4  # as many as speech layers, so every layer has a cross-modal pair

_SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


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
    texts = corpus_texts if corpus_texts is not None else flores_texts()
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
    with quiet():
        model = SeamlessM4Tv2Model(config).eval()
        perturb_layernorms(model, seed)
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    SeamlessM4TFeatureExtractor().save_pretrained(out)
    return out
