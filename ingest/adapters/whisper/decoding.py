"""Whisper's sites and its teacher-forced decoder (speech-conditioned only).

Sites: `speech.L{i}.ffn` (fc2's input = GELU(fc1(x)), encoder_ffn_dim wide),
`speech.L{i}.self_attn.q|k|v`; in the decoder `decoder.L{i}.ffn`, `decoder.L{i}.self_attn.q|k|v`,
`decoder.L{i}.cross_attn.q|k|v` (k/v = the projections of the encoder output, pooled over the
frames that hold audio). Decoder hidden states: `decoder.embed` (input of layer 1),
`decoder.L{i}` (layer outputs; the last after the decoder's final LayerNorm, as transformers'
`hidden_states[N]`).

The decoder reads the transcription with its task prefix, teacher-forced:
`<|startoftranscript|> <|xx|> <|transcribe|> <|notimestamps|> " text"` (the final
`<|endoftext|>` is only ever predicted, never read). Every position of that input is pooled
(prefix included: the language token is part of the target). Right padding never reaches a
valid position through causal attention, so a padded batch equals each item alone. The decoder
is loaded on the first request for a decoder point, never otherwise.
"""

from __future__ import annotations

from typing import Sequence

import torch

from actstore.errors import ActstoreError
from actstore.ingest.adapters.common.hf import load_submodule
from actstore.ingest.adapters.common.sites import Site, attn_sites, ffn_site, site_names
from actstore.ingest.items import Item

PREFIX = ("<|startoftranscript|>", None, "<|transcribe|>", "<|notimestamps|>")
END = "<|endoftext|>"


def encoder_sites(enc) -> list[dict[str, Site]]:
    return [{"ffn": ffn_site(layer.fc2), **attn_sites("self_attn", layer.self_attn)}
            for layer in enc.layers]


def decoder_sites(dec) -> list[dict[str, Site]]:
    return [{"ffn": ffn_site(layer.fc2), **attn_sites("self_attn", layer.self_attn),
             **attn_sites("cross_attn", layer.encoder_attn, cross=True)} for layer in dec.layers]


def declare(cfg) -> tuple[list[str], dict[str, int]]:
    """Optional speech points (sites, decoder states) and their widths, from the config alone."""
    d = cfg.d_model
    enc = [f"speech.L{i}.{s}" for i in range(1, cfg.encoder_layers + 1)
           for s in ("ffn", "self_attn.q", "self_attn.k", "self_attn.v")]
    dec_sites = ("ffn", "self_attn.q", "self_attn.k", "self_attn.v",
                 "cross_attn.q", "cross_attn.k", "cross_attn.v")
    dec = ["decoder.embed"]
    for i in range(1, cfg.decoder_layers + 1):
        dec += [f"decoder.L{i}"] + [f"decoder.L{i}.{s}" for s in dec_sites]
    widths = {p: (cfg.encoder_ffn_dim if p.endswith(".ffn") and p.startswith("speech.")
                  else cfg.decoder_ffn_dim if p.endswith(".ffn") else d) for p in enc + dec}
    return enc + dec, widths


def load_decoder(path: str, dtype, device):
    """The decoder alone, from the full checkpoint (`model.decoder.*`)."""
    from transformers.models.whisper.modeling_whisper import WhisperDecoder

    return load_submodule(WhisperDecoder, path, {r"^model\.decoder\.": "", r"^decoder\.": ""}, dtype, device,
                          "Whisper decoder")


def language_token(tokenizer, lang: str) -> int:
    """Whisper's `<|xx|>` token for a catalogue language (ISO 639-3), or an error."""
    from actstore.catalogue import Catalogue
    from actstore.errors import UnknownLanguageError
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    cands = [lang[:2]]
    try:
        row = Catalogue.load().get(lang)
        cands = [row.short_code, TO_LANGUAGE_CODE.get(row.name.lower()),
                 TO_LANGUAGE_CODE.get(row.name.split()[-1].lower())] + cands
    except UnknownLanguageError:  # a language outside the catalogue: try its first two letters
        pass
    for code in cands:
        if code:
            tid = tokenizer.convert_tokens_to_ids(f"<|{code}|>")
            if tid is not None and tid != tokenizer.unk_token_id:
                return tid
    raise ActstoreError(f"Whisper's tokenizer has no language token for {lang!r}; drop that "
                        "language from decoder runs.")


def target_ids(tokenizer, items: Sequence[Item], device, max_len: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced decoder input ids [B, T] (right-padded) and their mask; a target longer
    than the decoder's `max_len` positions is refused (Whisper's decoder has no more)."""
    rows = []
    for it in items:
        if it.target is None:
            raise ActstoreError(f"Item {it.lang}/{it.sample_id} has no target sentence; decoder "
                                "points need the transcription (a source with texts).")
        if it.target_lang not in (None, it.lang):
            raise ActstoreError(f"Whisper decodes transcriptions only, not {it.lang}->"
                                f"{it.target_lang}; drop --target-lang.")
        prefix = [tokenizer.convert_tokens_to_ids(t) if t else language_token(tokenizer, it.lang)
                  for t in PREFIX]
        rows.append(prefix + tokenizer.encode(" " + it.target.strip(), add_special_tokens=False))
        if max_len is not None and len(rows[-1]) > max_len:
            raise ActstoreError(f"The target of {it.lang}/{it.sample_id} is {len(rows[-1])} tokens, more "
                                f"than Whisper's decoder reads ({max_len}); drop or shorten it.")
    width = max(len(r) for r in rows)
    pad = tokenizer.convert_tokens_to_ids(END)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = True
    return ids.to(device), mask.to(device)


__all__ = ["declare", "decoder_sites", "encoder_sites", "load_decoder", "site_names", "target_ids"]
