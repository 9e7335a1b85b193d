"""SeamlessM4T v2's sites and its shared text decoder, teacher-forced, speech- or text-conditioned.

Sites (`common/sites.py` names):
- speech (conformer layer i): `speech.L{i}.ffn1`, `speech.L{i}.ffn2` (the two macaron FFNs'
  activations, the input of each `output_dense`; speech_encoder_intermediate_size wide) and
  `speech.L{i}.self_attn.q|k|v` (`linear_q|k|v`);
- text (encoder layer i): `text.L{i}.ffn` (fc2's input, encoder_ffn_dim), `text.L{i}.self_attn.q|k|v`;
- decoder (layer i): `decoder.L{i}.ffn`, `decoder.L{i}.self_attn.q|k|v`,
  `decoder.L{i}.cross_attn.q|k|v`; hidden states `decoder.embed`, `decoder.L{i}` (the last
  after the final LayerNorm).

Decoding: the decoder is shared by both encoders. It reads the target teacher-forced, as
transformers' generation would have produced it: `</s>` (decoder_start) `__tgt__` tokens
(the final `</s>` is only predicted). It attends to the speech encoder's output (after the
adaptor, masked by the adaptor lengths) for speech items and to the text encoder's output for
text items: the row's modality is the conditioning. The decoder is loaded only on the first
request for a decoder point ("load only what is analysed").
"""

from __future__ import annotations

from typing import Sequence

import torch

from actstore.errors import ActstoreError
from actstore.ingest.adapters.common.hf import load_submodule
from actstore.ingest.adapters.common.sites import Site, attn_sites, ffn_site
from actstore.ingest.items import Item

_ATTN = ("self_attn.q", "self_attn.k", "self_attn.v")
_CROSS = ("cross_attn.q", "cross_attn.k", "cross_attn.v")
_CONFORMER = ("linear_q", "linear_k", "linear_v")


def speech_sites(enc) -> list[dict[str, Site]]:
    return [{"ffn1": ffn_site(layer.ffn1.output_dense), "ffn2": ffn_site(layer.ffn2.output_dense),
             **attn_sites("self_attn", layer.self_attn, _CONFORMER)} for layer in enc.encoder.layers]


def text_sites(enc) -> list[dict[str, Site]]:
    return [{"ffn": ffn_site(layer.ffn.fc2), **attn_sites("self_attn", layer.self_attn)}
            for layer in enc.layers]


def decoder_sites(dec) -> list[dict[str, Site]]:
    return [{"ffn": ffn_site(layer.ffn.fc2), **attn_sites("self_attn", layer.self_attn),
             **attn_sites("cross_attn", layer.cross_attention, cross=True)} for layer in dec.layers]


def declare(cfg) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Optional points per modality (encoder sites + the shared decoder's) and their widths."""
    d = cfg.hidden_size
    widths: dict[str, int] = {}
    speech, text, dec = [], [], ["decoder.embed"]
    for i in range(1, cfg.speech_encoder_layers + 1):
        for s in ("ffn1", "ffn2") + _ATTN:
            speech.append(f"speech.L{i}.{s}")
            widths[speech[-1]] = cfg.speech_encoder_intermediate_size if s.startswith("ffn") else d
    for i in range(1, cfg.encoder_layers + 1):
        for s in ("ffn",) + _ATTN:
            text.append(f"text.L{i}.{s}")
            widths[text[-1]] = cfg.encoder_ffn_dim if s == "ffn" else d
    for i in range(1, cfg.decoder_layers + 1):
        dec.append(f"decoder.L{i}")
        for s in ("ffn",) + _ATTN + _CROSS:
            dec.append(f"decoder.L{i}.{s}")
            widths[dec[-1]] = cfg.decoder_ffn_dim if s == "ffn" else d
    widths.update({p: d for p in dec if p not in widths})
    return {"speech": speech + dec, "text": text + dec}, widths


def load_decoder(path: str, dtype, device):
    """The text decoder alone (`text_decoder.*`, embeddings from `shared.*`)."""
    from transformers.models.seamless_m4t_v2.modeling_seamless_m4t_v2 import SeamlessM4Tv2Decoder

    return load_submodule(SeamlessM4Tv2Decoder, path, {r"^text_decoder\.": "", r"^shared\.": "embed_tokens."},
                          dtype, device, "SeamlessM4T v2 text decoder")


def target_ids(tokenizer, items: Sequence[Item], start_id: int, lang_code, device
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced decoder input ids [B, T] (right-padded) and their mask."""
    rows = []
    for it in items:
        if it.target is None:
            raise ActstoreError(f"Item {it.lang}/{it.sample_id} has no target sentence; decoder "
                                "points need the source's texts.")
        code = lang_code(it.target_lang or it.lang)
        ids = tokenizer(it.target, src_lang=code)["input_ids"]  # __code__ tokens </s>
        rows.append([start_id] + list(ids[:-1]))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = True
    return ids.to(device), mask.to(device)
