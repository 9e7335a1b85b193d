"""Neuron sites: per-neuron activations inside a layer, named like points.

A *site* is `{stack}.L{i}.{kind}`: stack `speech`, `text` (the encoders) or `decoder`; layer i
counted from 1 as for points; kind one of

- `ffn`: the FFN's intermediate activation after the nonlinearity, i.e. the INPUT of its output
  projection (fc2). Width: the FFN width (Whisper base 2048, SeamlessM4T v2 4096 speech /
  8192 text). A conformer layer has two FFNs (macaron): `ffn1` and `ffn2`.
- `self_attn.q|k|v`: the outputs of the self-attention query/key/value projections (before
  Whisper's query scaling and before the split into heads), width d_model.
- `cross_attn.q|k|v` (decoder only): the cross-attention projections. q reads the decoder
  stream (target positions); k and v read the ENCODER output, so they are pooled over the
  source's valid positions.

Why hooks on the projection modules: they catch exactly the tensor the model computes (the
known-answer tests recompute them from the captured layer input), whatever transformers does
with its output tuples. Every site is pooled like a point: masked mean in float32 over its own
positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from torch import nn

from actstore.errors import ActstoreError
from actstore.ingest.adapters.common.hooks import Capture

#: the kinds `--sites` takes (`ffn` also selects a conformer's `ffn1`/`ffn2`)
SITE_KINDS = ("ffn", "self_attn.q", "self_attn.k", "self_attn.v",
              "cross_attn.q", "cross_attn.k", "cross_attn.v")
STACKS = ("speech", "text", "decoder")
#: `llm.` marks a decoder-only family's LLM layers where the name would otherwise collide with
#: its audio tower's (Qwen2-Audio: `speech.llm.L3.ffn` = LLM layer 3 at the audio positions)
_NAME = re.compile(r"^(speech|text|decoder)\.(?:llm\.)?L(\d+)(?:\.(.+))?$")


def parse_name(name: str) -> tuple[str, int, str | None] | None:
    """`decoder.L5.cross_attn.v` -> ("decoder", 5, "cross_attn.v"); `text.L3` -> ("text", 3, None);
    `text.llm.L3.ffn` -> ("text", 3, "ffn")."""
    m = _NAME.match(name)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def kind_matches(kind: str, site: str) -> bool:
    """True when `--sites` kind `kind` selects site suffix `site` (`ffn` covers `ffn1`, `ffn2`)."""
    return site == kind or (kind == "ffn" and site in ("ffn1", "ffn2"))


def check_kinds(kinds: Sequence[str]) -> None:
    """Refuse `--sites` kinds that are not known, in one sentence."""
    bad = [k for k in kinds if k not in SITE_KINDS]
    if bad:
        raise ActstoreError(f"Unknown site kind(s) {bad} in --sites; use {', '.join(SITE_KINDS)}.")


@dataclass(frozen=True)
class Site:
    """Where one site is read: a module's input (`ffn`: fc2's input) or output (projections),
    and which positions pool it: the stream's own ("self") or the source's ("source")."""

    module: nn.Module
    read: str  # "input" | "output"
    positions: str = "self"  # "self" | "source"


def ffn_site(fc2: nn.Module) -> Site:
    return Site(fc2, "input")


def attn_sites(prefix: str, attn: nn.Module, names: tuple[str, str, str] = ("q_proj", "k_proj", "v_proj"),
               cross: bool = False) -> dict[str, Site]:
    """`{prefix}.q|k|v` of one attention module (projection outputs)."""
    return {f"{prefix}.{s}": Site(getattr(attn, n), "output",
                                  "source" if cross and s != "q" else "self")
            for s, n in zip("qkv", names)}


def llm_sites(layers: Sequence[nn.Module]) -> list[dict[str, Site]]:
    """Sites of a LLaMA-style decoder (LLaMA, Qwen2: `mlp.down_proj`, `self_attn.q|k|v_proj`):
    `ffn` is the input of down_proj, i.e. act(gate_proj(x)) * up_proj(x); k/v are as wide as the
    key-value heads (grouped-query attention)."""
    return [{"ffn": ffn_site(layer.mlp.down_proj), **attn_sites("self_attn", layer.self_attn)}
            for layer in layers]


def named_sites(stacks: dict[str, Sequence[dict[str, Site]]]) -> dict[str, Site]:
    """Every site of the given stacks by full name (`{stack}.L{i}.{kind}`)."""
    return {f"{stack}.L{i}.{kind}": site for stack, layers in stacks.items()
            for i, sites in enumerate(layers, 1) for kind, site in sites.items()}


def by_position(layers: Sequence[dict[str, Site]], infix: str = "") -> dict[str, dict[str, Site]]:
    """A decoder-only LLM's sites under a speech and a text name each (`speech.{infix}L3.ffn`,
    `text.{infix}L3.ffn`): one module, pooled over the speech or the text positions of the prompt,
    as the family's hidden states are split."""
    return {m: {f"{m}.{infix}L{j}.{k}": site for j, sites in enumerate(layers, 1) for k, site in sites.items()}
            for m in ("speech", "text")}


def site_names(stack: str, layers: Sequence[dict[str, Site]]) -> list[str]:
    """Every site name of a stack, layer by layer, in declared order."""
    return [f"{stack}.L{i}.{s}" for i, sites in enumerate(layers, 1) for s in sites]


def hook_sites(cap: Capture, stack: str, layers: Sequence[dict[str, Site]],
               wanted: Iterable[str]) -> dict[str, str]:
    """Hook the wanted sites of one stack; returns {site name: positions ("self"/"source")}."""
    out: dict[str, str] = {}
    for name in wanted:
        parsed = parse_name(name)
        if parsed is None or parsed[0] != stack or parsed[2] is None:
            continue
        site = layers[parsed[1] - 1][parsed[2]]
        if site.read == "input":
            cap.input_of(site.module, name)
        else:
            cap.output_of(site.module, name)
        out[name] = site.positions
    return out


def expand_kinds(kinds: Sequence[str], available: Sequence[str],
                 layers: Sequence[int] | None, layer_of: Callable[[str], int | None] | None = None) -> list[str]:
    """The available site names of the given kinds (at `layers`; None: every layer). `layer_of`:
    the adapter's depth index of a name (default: its `L<i>`), which `--layers` counts in."""
    out = []
    for name in available:
        parsed = parse_name(name)
        if parsed is None or parsed[2] is None:
            continue
        if layers is not None and (layer_of(name) if layer_of else parsed[1]) not in layers:
            continue
        if any(kind_matches(k, parsed[2]) for k in kinds):
            out.append(name)
    return out


def capture_decoder(dec, sites: Sequence[dict[str, Site]], points: Sequence[str], ids, target_mask,
                    source_mask, **forward_kwargs) -> dict[str, tuple]:
    """Run a decoder teacher-forced over `ids` and capture the requested `decoder.*` points.

    Hidden states (`decoder.embed`, `decoder.L{i}`, the last after the final norm) and sites are
    pooled over the target (`target_mask`), except sites that read the encoder output
    (cross-attention k/v), which are pooled over the source (`source_mask`). `forward_kwargs`
    carry the family's encoder inputs (`encoder_hidden_states`, ...).
    """
    hidden = [p for p in ["decoder.embed"] + [f"decoder.L{i}" for i in range(1, len(dec.layers) + 1)]
              if p in points]
    with Capture() as cap:
        cap.layer_stack("decoder", hidden, dec.layers, dec.layer_norm, stop=False)
        where = hook_sites(cap, "decoder", sites, points)
        tensors = cap.run(lambda: dec(input_ids=ids, attention_mask=target_mask.long(), use_cache=False,
                                      **forward_kwargs))
    return {p: (tensors[p], source_mask if where.get(p) == "source" else target_mask) for p in points}
