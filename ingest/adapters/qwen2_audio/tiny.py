"""A tiny random-initialised Qwen2-Audio for tests and offline demos.

The directory it writes is what the real adapter loads for `Qwen/Qwen2-Audio-7B(-Instruct)`:
`config.json` (model_type `qwen2_audio`), `model.safetensors`, a `WhisperFeatureExtractor`, a
Qwen2 byte-level BPE tokenizer with the processor's audio tokens, and the processor config.
Only the widths are small, so tests exercise the real loading, prompt and hook code.

Published layout: the hub checkpoints were written by transformers 4.x, whose key names
(`audio_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
`language_model.lm_head.*`) differ from what transformers 5 keeps in memory (`model.audio_tower.*`,
...). The builder rewrites the saved keys into the published names, so loading goes through
transformers' own key conversion exactly as it does for the real weights.

The window: Whisper-style towers accept exactly `2 * max_source_positions` mel frames (3000 =
30 s for the released model). The tiny tower takes 200 frames (a 2 s window) and the feature
extractor is saved with `chunk_length=2` to match.

Tokenizer: a byte-level BPE (Qwen2's pre-tokenisation regex) trained with the `tokenizers`
library on the shipped FLORES text, so every script becomes real tokens offline; it carries the
special tokens the processor and the chat format use (`<|endoftext|>`, `<|im_start|>`,
`<|im_end|>`, `<|AUDIO|>`, `<|audio_bos|>`, `<|audio_eos|>`).

The config carries `actstore_random_init=True` (see common/tiny.py): every stored row and report
from this model is labelled random-init.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

#: audio tower: layers, width; window of 2 s = 200 mel frames = 100 tower positions
TOWER_LAYERS = 2
TOWER_WIDTH = 32
TOWER_MAX_SOURCE_POSITIONS = 100
CHUNK_SECONDS = 2
MEL_BINS = 128  # as the released model
#: language model: layers, width (differs from the tower's, so width mix-ups fail the tests)
LLM_LAYERS = 3
LLM_WIDTH = 48

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                  "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]

#: transformers-5 in-memory prefix -> the published (transformers 4.x) checkpoint prefix
_PUBLISHED_PREFIXES = [("model.audio_tower.", "audio_tower."),
                       ("model.multi_modal_projector.", "multi_modal_projector."),
                       ("model.language_model.", "language_model.model."),
                       ("lm_head.", "language_model.lm_head.")]


def train_qwen2_tokenizer(texts: list[str], vocab_size: int = 1000):
    """A `Qwen2Tokenizer` whose byte-level BPE is trained on `texts` (offline, ~1 s)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    # byte-level: no text is ever <unk>, so a sample of a big corpus is enough (keeps it ~1 s)
    tok.train_from_iterator(texts[::8] if len(texts) > 5000 else texts, trainer=trainer)
    state = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    qwen = Qwen2Tokenizer(vocab=state["vocab"], merges=merges)
    qwen.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return qwen


def _to_published_layout(out: Path) -> None:
    """Rename the saved tensors to the published checkpoint's key names (module docstring)."""
    from safetensors.torch import load_file, save_file

    path = out / "model.safetensors"
    state = load_file(str(path))
    renamed = {}
    for key, value in state.items():
        for new, old in _PUBLISHED_PREFIXES:
            if key.startswith(new):
                key = old + key[len(new):]
                break
        renamed[key] = value.contiguous()
    save_file(renamed, str(path), metadata={"format": "pt"})


def build_tiny_qwen2_audio(out_dir: str | Path, *, seed: int = 0,
                           corpus_texts: list[str] | None = None, vocab_size: int = 1000) -> Path:
    """Write a tiny random Qwen2-Audio (2 tower layers, 3 LLM layers, a 2 s window) to `out_dir`.

    `corpus_texts` trains the tokenizer (default: every shipped FLORES devtest sentence).
    """
    from transformers import (Qwen2AudioConfig, Qwen2AudioForConditionalGeneration,
                              Qwen2AudioProcessor, WhisperFeatureExtractor)

    from actstore.ingest.adapters.common.tiny import flores_texts, perturb_layernorms, quiet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts if corpus_texts is not None else flores_texts()
    tokenizer = train_qwen2_tokenizer(texts, vocab_size)
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(seed)
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", "d_model": TOWER_WIDTH,
                      "encoder_layers": TOWER_LAYERS, "encoder_attention_heads": 4,
                      "encoder_ffn_dim": 64, "num_mel_bins": MEL_BINS,
                      "max_source_positions": TOWER_MAX_SOURCE_POSITIONS},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": LLM_WIDTH,
                     "intermediate_size": 96, "num_hidden_layers": LLM_LAYERS,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 1024, "tie_word_embeddings": False,
                     "pad_token_id": pad_id, "bos_token_id": pad_id, "eos_token_id": pad_id},
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    config.actstore_random_init = True
    with quiet():
        model = Qwen2AudioForConditionalGeneration(config).eval()
        perturb_layernorms(model, seed)
        _perturb_rms_norms(model, seed)
        model.save_pretrained(out)
    _to_published_layout(out)
    fe = WhisperFeatureExtractor(feature_size=MEL_BINS, chunk_length=CHUNK_SECONDS)
    Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tokenizer).save_pretrained(out)
    return out


def _perturb_rms_norms(model: torch.nn.Module, seed: int) -> None:
    """Random scales for the LLM's RMSNorms too (a weight of 1 hides mix-ups between norms)."""
    gen = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for name, module in model.named_modules():
            if type(module).__name__.endswith("RMSNorm"):
                module.weight.copy_(1 + 0.2 * torch.randn(module.weight.shape, generator=gen))
