"""Tiny random-initialised SONAR encoders, written in the PUBLISHED on-disk formats.

`build_tiny_sonar_text` writes what fairseq2 downloads for `text_sonar_basic_encoder`:
- `sonar_text_encoder.pt`: `{"model": {fairseq2 names}}`, embedding rows in fairseq2 vocabulary
  order (pad 0 -- a zero row --, unk 1, bos 2, eos 3, pieces s+1, then `__lang__` tokens);
- `sentencepiece.source.model`: an NLLB-shaped SentencePiece BPE (`<unk>`=0 `<s>`=1 `</s>`=2, no
  `<pad>`, nmt_nfkc), trained offline on the shipped FLORES text (every script of the study);
- `asset_card.yaml`: a fairseq2 card (family `transformer_encoder`, arch `basic`, `model_config`
  overrides, `checkpoint`/`tokenizer` as `file://${MODEL_DIR}/...`, the 202 NLLB languages).

`build_tiny_sonar_speech` writes one fairseq1-layout checkpoint per language, as published
(`spenc.eng.pt`; `spenc.v3ap.<lang>.pt` for the others) including the keys SONAR's converter
drops (`mask_emb`, `pos_conv.*`, `decoder.version`, `_float_tensor`), plus one card per language.
English gets a 3-layer pooler (arch `english`), the other languages 6 (arch `non_english`), so
the adapter's "depth from the checkpoint" path is exercised.

Every card carries `actstore_random_init: true`; the adapters copy it into
`ModelInfo.random_init`, so every stored row and report is labelled RANDOM-INIT. LayerNorm and
BatchNorm affine parameters and BatchNorm running statistics are randomised (a fresh norm hides
padding and missing-statistics bugs).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import yaml

TINY_D = 32
TINY_HEADS = 4
TINY_FFN = 64
TEXT_LAYERS = 4
SPEECH_LAYERS = 4
SPEECH_KERNEL = 7
POOLER_LAYERS = {"eng": 3}  # every other language: 6 (SONAR's `non_english` arch)
NON_ENGLISH_POOLER_LAYERS = 6
SPEECH_LANGS = ("eng", "fra")


def _perturb_norms(model: torch.nn.Module, seed: int) -> None:
    """Random affine LayerNorm/BatchNorm parameters and BatchNorm statistics (see docstring)."""
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm1d)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=gen))


def _rename(state: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for pat, rep in rules:
            new, n = re.subn(pat, rep, key)
            if n:
                out[new] = value.detach().clone().contiguous()
                break
        else:
            raise KeyError(f"no published name for {key}")
    return out


def _write_card(path: Path, card: dict) -> None:
    path.write_text(yaml.safe_dump(card, sort_keys=False, allow_unicode=True), encoding="utf-8")


# -- text ------------------------------------------------------------------------------------

def train_sentencepiece(texts: list[str], prefix: Path, vocab_size: int) -> Path:
    """An NLLB-shaped BPE SentencePiece model (unk 0, bos 1, eos 2, no pad) trained on `texts`."""
    import sentencepiece as spm

    import unicodedata

    texts = [t for t in texts if t.strip()]
    alphabet = {ch for t in texts for ch in unicodedata.normalize("NFKC", t) if not ch.isspace()}
    vocab_size = max(vocab_size, len(alphabet) + 64)  # every character of the corpus is a piece
    corpus = Path(f"{prefix}.txt")
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(prefix), vocab_size=vocab_size, model_type="bpe",
        character_coverage=1.0, normalization_rule_name="nmt_nfkc", unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, hard_vocab_limit=False, minloglevel=2, num_threads=1,
        input_sentence_size=0, shuffle_input_sentence=False)
    corpus.unlink()
    Path(f"{prefix}.vocab").unlink(missing_ok=True)  # not part of the published format
    return Path(f"{prefix}.model")


def _m2m100_to_fairseq2(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from actstore.ingest.adapters.sonar.text import HF_ROW_SOURCE

    out = _rename(state, [
        (r"^embed_tokens\.weight$", "encoder_frontend.embed.weight"),
        (r"^layers\.(\d+)\.self_attn\.out_proj\.", r"encoder.layers.\1.self_attn.output_proj."),
        (r"^layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.self_attn."),
        (r"^layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
        (r"^layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.ffn_layer_norm."),
        (r"^layers\.(\d+)\.fc1\.", r"encoder.layers.\1.ffn.inner_proj."),
        (r"^layers\.(\d+)\.fc2\.", r"encoder.layers.\1.ffn.output_proj."),
        (r"^layer_norm\.", "layer_norm.")])
    emb = out["encoder_frontend.embed.weight"]
    fs2 = emb.clone()
    for hf_row, fs2_row in enumerate(HF_ROW_SOURCE):
        fs2[fs2_row] = emb[hf_row]
    out["encoder_frontend.embed.weight"] = fs2
    return out


def build_tiny_sonar_text(out_dir: str | Path, *, seed: int = 0, corpus_texts: list[str] | None = None,
                          vocab_size: int = 4000) -> Path:
    """Write a tiny random SONAR text encoder (4 layers, width 32) in the published layout."""
    from transformers import M2M100Config
    from transformers.models.m2m_100.modeling_m2m_100 import M2M100Encoder

    from actstore.ingest.adapters.common.nllb_langs import NLLB_LANGS
    from actstore.ingest.adapters.common.tiny import flores_texts, quiet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # every 8th shipped FLORES sentence: all 36 scripts, trains in well under a second
    texts = corpus_texts if corpus_texts is not None else flores_texts()[::8]
    spm_path = train_sentencepiece(texts, out / "sentencepiece.source", vocab_size)
    import sentencepiece as spm

    pieces = spm.SentencePieceProcessor(model_file=str(spm_path)).get_piece_size()
    vocab = pieces + 1 + len(NLLB_LANGS) + 3
    torch.manual_seed(seed)
    config = M2M100Config(vocab_size=vocab, d_model=TINY_D, encoder_layers=TEXT_LAYERS,
                          encoder_attention_heads=TINY_HEADS, encoder_ffn_dim=TINY_FFN,
                          activation_function="relu", scale_embedding=True, max_position_embeddings=514,
                          pad_token_id=1, decoder_layers=1)
    with quiet():
        enc = M2M100Encoder(config).eval()
    _perturb_norms(enc, seed)
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if name.endswith(".bias") and "layer_norm" not in name:
                p.copy_(0.1 * torch.randn(p.shape))
    state = _m2m100_to_fairseq2(enc.state_dict())
    torch.save({"model": state}, out / "sonar_text_encoder.pt")
    _write_card(out / "asset_card.yaml", {
        "name": "tiny_text_sonar_basic_encoder", "model_family": "transformer_encoder",
        "model_arch": "basic",
        "model_config": {"model_dim": TINY_D, "num_encoder_layers": TEXT_LAYERS,
                         "num_encoder_attn_heads": TINY_HEADS, "ffn_inner_dim": TINY_FFN,
                         "vocab_info": {"size": vocab}},
        "checkpoint": "file://${MODEL_DIR}/sonar_text_encoder.pt",
        "tokenizer": f"file://${{MODEL_DIR}}/{spm_path.name}", "tokenizer_family": "nllb",
        "tokenizer_config": {"_set_": {"default_lang": "eng_Latn", "langs": list(NLLB_LANGS)}},
        "actstore_random_init": True,
    })
    return out


# -- speech ----------------------------------------------------------------------------------

def _encoder_to_fairseq1(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return _rename(state, [
        (r"^feature_projection\.layer_norm\.", "encoder.w2v_model.layer_norm."),
        (r"^feature_projection\.projection\.", "encoder.w2v_model.post_extract_proj."),
        (r"^encoder\.layers\.(\d+)\.(ffn[12])_layer_norm\.", r"encoder.w2v_model.encoder.layers.\1.\2.layer_norm."),
        (r"^encoder\.layers\.(\d+)\.(ffn[12])\.intermediate_dense\.", r"encoder.w2v_model.encoder.layers.\1.\2.w_1."),
        (r"^encoder\.layers\.(\d+)\.(ffn[12])\.output_dense\.", r"encoder.w2v_model.encoder.layers.\1.\2.w_2."),
        (r"^encoder\.", "encoder.w2v_model.encoder."),
        (r"^pooler\.", "decoder.")])


def build_tiny_sonar_speech(out_dir: str | Path, *, seed: int = 0,
                            langs: tuple[str, ...] = SPEECH_LANGS) -> Path:
    """Write tiny random SONAR speech encoders (4 conformer layers, width 32), one per language."""
    from transformers import SeamlessM4TConfig

    from actstore.ingest.adapters.sonar.speech_model import SonarSpeechEncoder

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = SeamlessM4TConfig(
        hidden_size=TINY_D, speech_encoder_layers=SPEECH_LAYERS, speech_encoder_attention_heads=TINY_HEADS,
        speech_encoder_intermediate_size=TINY_FFN, conv_depthwise_kernel_size=SPEECH_KERNEL,
        position_embeddings_type="relative", speech_encoder_hidden_act="swish",
        feature_projection_input_dim=160, speech_encoder_dropout=0.0, vocab_size=8, t2u_vocab_size=8)
    for i, lang in enumerate(langs):
        torch.manual_seed(seed + 100 * i)
        depth = POOLER_LAYERS.get(lang, NON_ENGLISH_POOLER_LAYERS)
        model = SonarSpeechEncoder(config, TINY_HEADS, TINY_FFN, depth).eval()
        _perturb_norms(model, seed + 100 * i)
        with torch.no_grad():
            torch.nn.init.normal_(model.pooler.embed_out, std=TINY_D ** -0.5)
            torch.nn.init.normal_(model.pooler.embed_tokens.weight, std=TINY_D ** -0.5)
            for layer in model.encoder.layers:
                layer.self_attn.pos_bias_u.normal_(0, 0.1)
                layer.self_attn.pos_bias_v.normal_(0, 0.1)
        state = _encoder_to_fairseq1(model.state_dict())
        # keys present in the published fairseq1 files and dropped by SONAR's converter
        state["encoder.w2v_model.mask_emb"] = torch.rand(TINY_D)
        state["encoder.w2v_model.encoder.pos_conv.0.bias"] = torch.zeros(TINY_D)
        state["encoder.w2v_model.encoder.pos_conv.0.weight_g"] = torch.ones(1, 1, 128)
        state["encoder.w2v_model.encoder.pos_conv.0.weight_v"] = torch.zeros(TINY_D, TINY_D // 16, 128)
        state["decoder.version"] = torch.tensor([3.0])
        state["decoder.embed_positions._float_tensor"] = torch.tensor([1.0])
        name = "spenc.eng.pt" if lang == "eng" else f"spenc.v3ap.{lang}.pt"
        torch.save({"model": state}, out / name)
        _write_card(out / f"sonar_speech_encoder_{lang}.yaml", {
            "name": f"tiny_sonar_speech_encoder_{lang}", "base": "sonar_speech_encoder_base",
            "model_arch": "english" if lang == "eng" else "non_english",
            "model_config": {"model_dim": TINY_D, "num_decoder_layers": depth,
                             "num_decoder_attn_heads": TINY_HEADS, "ffn_inner_dim": TINY_FFN,
                             "w2v2_encoder_config": {"model_dim": TINY_D,
                                                     "num_encoder_layers": SPEECH_LAYERS,
                                                     "num_encoder_attn_heads": TINY_HEADS,
                                                     "ffn_inner_dim": TINY_FFN,
                                                     "depthwise_conv_kernel_size": SPEECH_KERNEL}},
            "checkpoint": f"file://${{MODEL_DIR}}/{name}",
            "actstore_random_init": True,
        })
    return out


def build_tiny_sonar(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Tiny random SONAR text and speech encoders in one directory (the `sonar` adapter's layout)."""
    build_tiny_sonar_text(out_dir, seed=seed)
    return build_tiny_sonar_speech(out_dir, seed=seed)
