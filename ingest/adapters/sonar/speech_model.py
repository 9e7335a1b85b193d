"""SONAR's speech encoder as torch modules, and the map from its published fairseq1 key names.

`SonarSpeechEncoder` = the front-end projection (LayerNorm(160) + Linear on stacked fbank frames),
transformers' SeamlessM4T (v1) conformer with relative positions (its final `layer_norm` is
SONAR's post-encoder LayerNorm), and `SonarAttentionPooler`, a native port of SONAR's
`AttentionEncoderOutputPooler` whose parameter names are the fairseq1 `decoder.*` names. The
adapter (`sonar_speech`) documents the model; this module only builds it.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

BOS_IDX = 2
#: keys of the published files that SONAR's converter drops (unused by the encoder)
DROPPED = re.compile(r"(^encoder\.w2v_model\.mask_emb$|\.pos_conv\.|^decoder\.version$|_float_tensor$)")


# -- the pooler -------------------------------------------------------------------------------

class _Attention(nn.Module):
    """fairseq multi-head attention (q/k/v/out projections with biases), no dropout."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads

        def split(y):
            return y.view(b, -1, h, d // h).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(memory)), split(self.v_proj(memory))
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class _PoolerLayer(nn.Module):
    """Post-LN transformer decoder layer with fairseq1 names (self, cross attention, ReLU FFN)."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn = _Attention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = _Attention(d, heads)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, memory, mask):
        x = self.self_attn_layer_norm(x + self.self_attn(x, x, None))
        x = self.encoder_attn_layer_norm(x + self.encoder_attn(x, memory, mask))
        return self.final_layer_norm(x + self.fc2(F.relu(self.fc1(x))))


class SonarAttentionPooler(nn.Module):
    """SONAR's `AttentionEncoderOutputPooler` with the fairseq1 `decoder.*` parameter names."""

    def __init__(self, d: int, heads: int, ffn: int, n_layers: int):
        super().__init__()
        self.embed_tokens = nn.Embedding(d, d)  # num_embeddings = model_dim, as published
        self.layers = nn.ModuleList([_PoolerLayer(d, heads, ffn) for _ in range(n_layers)])
        self.embed_out = nn.Parameter(torch.empty(d, d))

    def query(self, batch: int) -> torch.Tensor:
        """The single query: bos row x sqrt(d) + sinusoid of step 0 ([sin 0 | cos 0])."""
        d = self.embed_tokens.embedding_dim
        row = self.embed_tokens.weight[BOS_IDX] * math.sqrt(d)
        pos = torch.cat([torch.zeros(d // 2), torch.ones(d - d // 2)]).to(row)
        return (row + pos).expand(batch, 1, d)

    def forward(self, memory: torch.Tensor, mask: torch.Tensor, states: list | None = None
                ) -> torch.Tensor:
        """memory [B, T, d], mask [B, T] bool -> [B, d]; `states` collects the query per stage."""
        x = self.query(memory.shape[0])
        if states is not None:
            states.append(x[:, 0])
        for layer in self.layers:
            x = layer(x, memory, mask)
            if states is not None:
                states.append(x[:, 0])
        return F.linear(x[:, 0], self.embed_out)


class SonarSpeechEncoder(nn.Module):
    """Front-end projection + conformer (+ post-encoder LayerNorm) + attention pooler."""

    def __init__(self, config, pooler_heads: int, pooler_ffn: int, pooler_layers: int):
        super().__init__()
        from transformers.models.seamless_m4t.modeling_seamless_m4t import (
            SeamlessM4TConformerEncoder, SeamlessM4TConformerFeatureProjection)

        self.feature_projection = SeamlessM4TConformerFeatureProjection(config)
        self.encoder = SeamlessM4TConformerEncoder(config)
        self.pooler = SonarAttentionPooler(config.hidden_size, pooler_heads, pooler_ffn, pooler_layers)


def speech_state_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fairseq1 SONAR speech names -> `SonarSpeechEncoder` names (dropped keys removed)."""
    renames = [(r"^encoder\.w2v_model\.layer_norm\.", "feature_projection.layer_norm."),
               (r"^encoder\.w2v_model\.post_extract_proj\.", "feature_projection.projection."),
               (r"^encoder\.w2v_model\.encoder\.layers\.(\d+)\.(ffn[12])\.layer_norm\.",
                r"encoder.layers.\1.\2_layer_norm."),
               (r"^encoder\.w2v_model\.encoder\.layers\.(\d+)\.(ffn[12])\.w_1\.",
                r"encoder.layers.\1.\2.intermediate_dense."),
               (r"^encoder\.w2v_model\.encoder\.layers\.(\d+)\.(ffn[12])\.w_2\.",
                r"encoder.layers.\1.\2.output_dense."),
               (r"^encoder\.w2v_model\.encoder\.", "encoder."),
               (r"^decoder\.", "pooler.")]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if DROPPED.search(key):
            continue
        for pat, rep in renames:
            new, n = re.subn(pat, rep, key)
            if n:
                out[new] = value
                break
        else:
            out[key] = value
    return out
