"""A tiny random-initialised SALMONN in the released on-disk formats (tests and the offline demo).

The directory it writes is laid out like a SALMONN installation, so the adapter reads it with
exactly the code that reads the real files:

    decode_config.yaml                 SALMONN's decode config, paths relative to this directory
    whisper/                           HF Whisper dir (WhisperForConditionalGeneration names,
                                       30 s window = 1500 encoder frames, feature extractor)
    beats/BEATs_tiny_random.pt         original BEATs {'cfg', 'model'}: weight-norm pos_conv
                                       (weight_g/weight_v), the bias table stored under every
                                       layer, the AudioSet predictor head
    vicuna/                            HF LLaMA dir, weights float16 in pytorch_model.bin (as
                                       Vicuna ships), slow SentencePiece tokenizer.model
    salmonn_tiny_random.pth            {'model': trainable weights} with SALMONN's names (BERT
                                       Q-Former, LoRA `...lora_A.default.weight`, buffers)
    bert-base-uncased/config.json      the Q-Former's BERT config stand-in

The tokenizer is a LLaMA-style SentencePiece BPE with byte fallback (`<unk>`=0, `<s>`=1,
`</s>`=2, identity normalisation, split digits) trained offline on the shipped FLORES devtest
text, so every script becomes real pieces or bytes, never `<unk>`.

RANDOM-INIT: `decode_config.yaml` carries `actstore: {random_init: true}` and the Whisper and
LLaMA configs `actstore_random_init`; the adapter reports it and every stored row is labelled.
LayerNorm/RMSNorm affine parameters and BEATs' gates are randomised and LoRA B is non-zero, so a
port that drops a norm, a bias or LoRA would change the numbers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from actstore.ingest.adapters.salmonn.checkpoint import SALMONN_DECODE_DEFAULTS
from actstore.ingest.adapters.common.tiny import flores_texts, perturb_layernorms, quiet

WHISPER_WIDTH = 32
BEATS_WIDTH = 48
QFORMER_WIDTH = 32
LLM_WIDTH = 64
LLM_LAYERS = 4
LORA_RANK, LORA_ALPHA = 8, 32
BEATS_FILE = "beats/BEATs_tiny_random.pt"
CKPT_FILE = "salmonn_tiny_random.pth"
TEMPLATE = "USER: {}\nASSISTANT:"


def train_llama_spm(texts: list[str], vocab_size: int = 4000) -> bytes:
    """A LLaMA-style SentencePiece BPE model (bytes of tokenizer.model) trained on `texts`."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=buf, model_type="bpe", vocab_size=vocab_size,
        byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=0.99,
        split_digits=True, normalization_rule_name="identity", num_threads=1, minloglevel=2,
        hard_vocab_limit=False)
    return buf.getvalue()


def _write_tokenizer(out: Path, model: bytes) -> int:
    """tokenizer.model + the JSON files of a transformers-4.28 LLaMA dir; returns the vocab size."""
    import sentencepiece as spm

    (out / "tokenizer.model").write_bytes(model)
    tok = {"content": None, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    special = {name: dict(tok, content=c) for name, c in
               (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>"))}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {"add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
              "model_max_length": 2048, "pad_token": None, "sp_model_kwargs": {},
              "tokenizer_class": "LlamaTokenizer",
              **{k: dict(v, __type="AddedToken") for k, v in special.items()}}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return spm.SentencePieceProcessor(model_proto=model).get_piece_size()


def _whisper(out: Path, seed: int) -> None:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(vocab_size=64, num_mel_bins=80, d_model=WHISPER_WIDTH, encoder_layers=2,
                           decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=1500,
                           max_target_positions=32, pad_token_id=1, bos_token_id=2, eos_token_id=3,
                           decoder_start_token_id=2, begin_suppress_tokens=None, suppress_tokens=None)
    config.actstore_random_init = True
    with quiet():
        model = WhisperForConditionalGeneration(config).eval()
        perturb_layernorms(model, seed)
        model.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)  # 30 s, as SALMONN needs


def beats_cfg() -> dict:
    """The released cpt2 `cfg` with tiny widths."""
    return {"input_patch_size": 16, "embed_dim": 32, "conv_bias": False, "encoder_layers": 2,
            "encoder_embed_dim": BEATS_WIDTH, "encoder_ffn_embed_dim": 96, "encoder_attention_heads": 4,
            "activation_fn": "gelu", "layer_wise_gradient_decay_ratio": 0.6, "layer_norm_first": False,
            "deep_norm": True, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0,
            "encoder_layerdrop": 0.05, "dropout_input": 0.0, "conv_pos": 128, "conv_pos_groups": 16,
            "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800,
            "gru_rel_pos": True, "finetuned_model": True, "predictor_dropout": 0.0, "predictor_class": 527}


def beats_state_dict(cfg: dict, seed: int) -> dict:
    """Random BEATs weights in the original checkpoint's names and parametrisation."""
    from actstore.ingest.adapters.salmonn.beats import Beats, BeatsConfig

    torch.manual_seed(seed)
    model = Beats(BeatsConfig.from_dict(cfg))
    perturb_layernorms(model, seed)
    gen = torch.Generator().manual_seed(seed + 2)
    sd = {}
    for k, v in model.state_dict().items():
        if k == "encoder.pos_conv.weight":
            g = v.norm(dim=(0, 1), keepdim=True) * (1 + 0.1 * torch.rand(v.shape[2], generator=gen))
            sd["encoder.pos_conv.0.weight_g"], sd["encoder.pos_conv.0.weight_v"] = g, v.clone()
        elif k == "encoder.pos_conv.bias":
            sd["encoder.pos_conv.0.bias"] = 0.1 * torch.randn(v.shape, generator=gen)
        elif k.endswith("grep_a"):
            sd[k] = 1 + 0.3 * torch.randn(v.shape, generator=gen)
        else:
            sd[k] = v.clone()
    table = sd["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    for i in range(1, cfg["encoder_layers"]):  # the reference shares layer 0's table and saves it per layer
        sd[f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"] = table
    sd["predictor.weight"] = 0.02 * torch.randn(cfg["predictor_class"], cfg["encoder_embed_dim"], generator=gen)
    sd["predictor.bias"] = torch.zeros(cfg["predictor_class"])
    return sd


def _vicuna(out: Path, seed: int, corpus: list[str], vocab_size: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    n_vocab = _write_tokenizer(out, train_llama_spm(corpus, vocab_size))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=n_vocab, hidden_size=LLM_WIDTH, intermediate_size=128,
                         num_hidden_layers=LLM_LAYERS, num_attention_heads=4, rms_norm_eps=1e-5,
                         max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                         tie_word_embeddings=False)
    config.actstore_random_init = True
    with quiet():
        model = LlamaForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
    sd = {k: v.to(torch.float16) for k, v in model.state_dict().items()}
    torch.save(sd, out / "pytorch_model.bin")  # Vicuna's released layout: float16 .bin
    config.dtype = torch.float16
    config.save_pretrained(out)


def _salmonn_checkpoint(seed: int, beats_width: int, llm_layers: int) -> dict:
    """SALMONN's trainable weights under SALMONN's own names."""
    from transformers import Blip2QFormerConfig, Blip2QFormerModel

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 4)
    qcfg = Blip2QFormerConfig(hidden_size=QFORMER_WIDTH, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=64, cross_attention_frequency=1,
                              encoder_hidden_size=WHISPER_WIDTH + beats_width)
    qformer = Blip2QFormerModel(qcfg)
    perturb_layernorms(qformer, seed)
    sd = {"speech_query_tokens": 0.02 * torch.randn(1, 1, QFORMER_WIDTH, generator=gen)}
    for k, v in qformer.state_dict().items():
        if k.startswith("layernorm."):
            name = "embeddings.LayerNorm." + k.removeprefix("layernorm.")
        else:
            name = k.replace(".attention.attention.", ".attention.self.").replace(
                ".crossattention.attention.", ".crossattention.self.")
        sd["speech_Qformer.bert." + name] = v.clone()
    sd["speech_Qformer.bert.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    prefix = "llama_model.base_model.model.model.layers"
    head_dim = LLM_WIDTH // 4
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    for i in range(llm_layers):
        for proj in ("q_proj", "v_proj"):
            sd[f"{prefix}.{i}.self_attn.{proj}.lora_A.default.weight"] = 0.1 * torch.randn(LORA_RANK, LLM_WIDTH, generator=gen)
            sd[f"{prefix}.{i}.self_attn.{proj}.lora_B.default.weight"] = 0.1 * torch.randn(LLM_WIDTH, LORA_RANK, generator=gen)
        sd[f"{prefix}.{i}.self_attn.rotary_emb.inv_freq"] = inv_freq.half().float()
    sd["speech_llama_proj.weight"] = 0.2 * torch.randn(LLM_WIDTH, QFORMER_WIDTH, generator=gen)
    sd["speech_llama_proj.bias"] = 0.1 * torch.randn(LLM_WIDTH, generator=gen)
    for name, width in (("ln_speech", WHISPER_WIDTH), ("ln_audio", beats_width)):
        sd[f"{name}.weight"] = 1 + 0.2 * torch.randn(width, generator=gen)
        sd[f"{name}.bias"] = 0.1 * torch.randn(width, generator=gen)
    return sd


def decode_config(ckpt: str = CKPT_FILE, beats: str = BEATS_FILE) -> dict:
    """SALMONN's configs/decode_config.yaml with this directory's relative paths."""
    return {
        "model": {"llama_path": "vicuna", "whisper_path": "whisper", "beats_path": beats, "ckpt": ckpt,
                  **SALMONN_DECODE_DEFAULTS, "lora_rank": LORA_RANK, "lora_alpha": LORA_ALPHA,
                  "prompt_template": TEMPLATE},
        "generate": {"max_new_tokens": 200, "num_beams": 4, "do_sample": False, "min_length": 1,
                     "temperature": 1.0, "top_p": 0.9, "repetition_penalty": 1.0, "length_penalty": 1.0},
        "actstore": {"random_init": True,
                     "note": "tiny random-initialised SALMONN written by actstore make-tiny-model"},
    }


def build_tiny_salmonn(out_dir: str | Path, *, seed: int = 0, corpus_texts: list[str] | None = None,
                       vocab_size: int = 4000) -> Path:
    """Write the tiny random SALMONN to `out_dir` (see module docstring); returns the directory.

    `corpus_texts` trains the tokenizer (default: every 4th shipped FLORES devtest sentence).
    """
    import yaml
    from transformers import BertConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts if corpus_texts is not None else flores_texts()[::4]
    _whisper(out / "whisper", seed)
    cfg = beats_cfg()
    (out / BEATS_FILE).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"cfg": cfg, "model": beats_state_dict(cfg, seed)}, out / BEATS_FILE)
    _vicuna(out / "vicuna", seed, texts, vocab_size)
    torch.save({"model": _salmonn_checkpoint(seed, cfg["encoder_embed_dim"], LLM_LAYERS)}, out / CKPT_FILE)
    (out / "bert-base-uncased").mkdir(exist_ok=True)
    BertConfig(hidden_size=QFORMER_WIDTH, num_attention_heads=4, intermediate_size=64).to_json_file(
        out / "bert-base-uncased" / "config.json")
    (out / "decode_config.yaml").write_text(yaml.safe_dump(decode_config(), sort_keys=False), encoding="utf-8")
    return out
