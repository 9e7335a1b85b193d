"""Qwen2-Audio's neuron sites: its LLM layers' FFN and self-attention projections, split by
position exactly as its hidden states are.

Names follow the LLM's hidden-state points (`speech.llm.L{j}`, `text.llm.L{j}`):
- `speech.llm.L{j}.ffn`, `text.llm.L{j}.ffn`: the FFN activation of LLM layer j, i.e. the input
  of `mlp.down_proj` = act(gate_proj(x)) * up_proj(x) (intermediate_size wide);
- `speech.llm.L{j}.self_attn.q|k|v`, `text.llm.L{j}.self_attn.q|k|v`: the projections' outputs
  (q: hidden_size; k/v: key-value heads x head_dim, narrower under grouped-query attention).
The LLM is one stack: a `speech.` site is the module's tensor pooled over the audio-token
positions, a `text.` site the same tensor pooled over the text positions (the adapter's
`text_pool`), so both come from the same forward as the hidden states. The `llm.` keeps them
apart from the audio tower's layers (`speech.L{i}`), as for the hidden states.
Layer index (`layer_of`): that of the layer's hidden state, n_tower + 1 + j.
"""

from __future__ import annotations

import re

from torch import nn

from actstore.ingest.adapters.common.clamps import site_width
from actstore.ingest.adapters.common.sites import Site, by_position, llm_sites

KINDS = ("ffn", "self_attn.q", "self_attn.k", "self_attn.v")
_SITE = re.compile(r"^(speech|text)\.llm\.L(\d+)\.(ffn|self_attn\.[qkv])$")


def parse(point: str) -> tuple[str, int, str] | None:
    """`text.llm.L2.ffn` -> ("text", 2, "ffn"); None for any other name."""
    m = _SITE.match(point)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def declare(llm: nn.Module) -> tuple[dict[str, Site], dict[str, list[str]], dict[str, int]]:
    """Every site by name (both modalities' names point at one module), the optional points per
    modality, and their widths."""
    named = by_position(llm_sites(llm.layers), "llm.")
    every = {**named["speech"], **named["text"]}
    return every, {m: list(v) for m, v in named.items()}, {p: site_width(s) for p, s in every.items()}
