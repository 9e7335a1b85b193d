"""SALMONN's window-level Q-Former on transformers' `Blip2QFormerModel`, and its projection.

SALMONN cuts the concatenated [Whisper | BEATs] sequence (1500 frames = 30 s) into windows of
`kernel` frames every `stride` frames (F.unfold, no padding: (1500 - kernel) // stride + 1
windows, a tail shorter than a window is dropped), runs a BERT Q-Former per window with
`num_query_tokens` learned queries cross-attending to the window's frames (all frames attended;
no mask), and projects every query's output to the LLM width. The LLM sees
windows * num_query_tokens auditory tokens whatever the clip length (88 for 30 s / 17 frames).

Why `Blip2QFormerModel`: with query embeddings only, SALMONN's BERT Q-Former is exactly its
computation: LayerNorm (eps 1e-12) on the queries, then per layer self-attention,
cross-attention to the window (keys/values from the encoder width), and the query FFN
(`intermediate_query`/`output_query`). Its weights load strictly after `qformer_key`'s renaming.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from actstore.errors import UnknownModelError


def unfold_windows(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """[B, T, C] -> [B * windows, kernel, C], windows in time order per item (SALMONN's unfold)."""
    B, T, C = x.shape
    if T < kernel:
        raise ValueError(f"a sequence of {T} frames is shorter than one {kernel}-frame window")
    w = x.unfold(1, kernel, stride)                 # [B, windows, C, kernel]
    return w.permute(0, 1, 3, 2).reshape(-1, kernel, C)


def num_windows(frames: int, kernel: int, stride: int) -> int:
    return (frames - kernel) // stride + 1


def _bert_settings(bert_dir: Path | None) -> dict:
    """hidden/heads/FFN/activation/eps of the Q-Former's BERT (bert-base-uncased by default)."""
    from transformers import BertConfig

    cfg = BertConfig.from_pretrained(str(bert_dir), local_files_only=True) if bert_dir else BertConfig()
    return {"hidden_size": cfg.hidden_size, "num_attention_heads": cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size, "hidden_act": cfg.hidden_act,
            "layer_norm_eps": cfg.layer_norm_eps}


class WindowQFormer(nn.Module):
    """Queries + Q-Former + projection: [B, 1500, C] -> ([B, W*nq, Dq], [B, W*nq, H])."""

    def __init__(self, qformer: nn.Module, query_tokens: torch.Tensor, proj: nn.Linear,
                 kernel: int, stride: int):
        super().__init__()
        self.qformer = qformer
        self.query_tokens = nn.Parameter(query_tokens, requires_grad=False)
        self.proj = proj
        self.kernel, self.stride = kernel, stride

    def forward(self, concat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = concat.shape[0]
        windows = unfold_windows(concat, self.kernel, self.stride)
        queries = self.query_tokens.expand(windows.shape[0], -1, -1)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=windows).last_hidden_state
        out = out.to(self.proj.weight.dtype)
        return out.reshape(B, -1, out.shape[-1]), self.proj(out).reshape(B, -1, self.proj.out_features)


def build_window_qformer(weights, bert_dir: Path | None, *, kernel: int, stride: int,
                         encoder_width: int, llm_width: int, dtype: torch.dtype,
                         device: torch.device) -> WindowQFormer:
    """The Q-Former of a SALMONN checkpoint (`SalmonnWeights`), shapes checked against the config."""
    from transformers import Blip2QFormerConfig, Blip2QFormerModel

    sd = weights.qformer
    layers = sorted({int(k.split(".")[2]) for k in sd if k.startswith("encoder.layer.")})
    if not layers:
        raise UnknownModelError("The SALMONN checkpoint has no Q-Former layers; pass a complete salmonn*.pth.")
    bert = _bert_settings(bert_dir)
    hidden = weights.query_tokens.shape[-1]
    if hidden != bert["hidden_size"]:
        raise UnknownModelError(f"The Q-Former queries are {hidden}-wide but the BERT config says "
                                f"{bert['hidden_size']}; put the matching bert-base-uncased/config.json "
                                "next to the decode config.")
    cross_every = 1 if all(f"encoder.layer.{i}.crossattention.attention.query.weight" in sd
                           for i in layers) else 2
    config = Blip2QFormerConfig(
        hidden_size=hidden, num_hidden_layers=len(layers),
        num_attention_heads=bert["num_attention_heads"],
        intermediate_size=sd["encoder.layer.0.intermediate_query.dense.weight"].shape[0],
        hidden_act=bert["hidden_act"], layer_norm_eps=bert["layer_norm_eps"],
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        cross_attention_frequency=cross_every, encoder_hidden_size=encoder_width)
    config._attn_implementation = "eager"  # what SALMONN's BERT computes; standalone modules need it set
    with torch.device("meta"):
        qformer = Blip2QFormerModel(config)
        proj = nn.Linear(hidden, llm_width)
    missing, unexpected = qformer.load_state_dict(sd, strict=False, assign=True)
    if missing or unexpected:
        raise UnknownModelError(f"The SALMONN Q-Former weights do not fit a {len(layers)}-layer "
                                f"Q-Former (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); "
                                "pass an unmodified salmonn*.pth.")
    if tuple(weights.proj["weight"].shape) != (llm_width, hidden):
        raise UnknownModelError(f"speech_llama_proj maps {hidden} -> {weights.proj['weight'].shape[0]} but "
                                f"the LLM is {llm_width}-wide; the checkpoint and llama_path do not belong together.")
    proj.load_state_dict(weights.proj, strict=True, assign=True)
    module = WindowQFormer(qformer, weights.query_tokens, proj, kernel, stride)
    return module.to(device=device, dtype=dtype).eval()
