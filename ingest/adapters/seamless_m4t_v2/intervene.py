"""SeamlessM4T v2's side of the intervention protocol (`Adapter.intervention_sites`,
`target_loglik`, `generate`; `first_step_language_probs` is None: the target language token is
forced, never chosen): the adapter's methods call these.

Conditioning: the shared text decoder reads the speech encoder's output (after the length
adaptor) for "speech" and the text encoder's output of `item.text` (source language `item.lang`)
for "text", exactly as the ingest's decoder points do (`decoding.py`, `adapter.encode_source`).

- `target_loglik`: teacher-forced over `</s> __tgt__ target` (`decoding.target_ids`: the target
  language is `item.target_lang`, else `item.lang`, so a transcription when they agree and a
  translation when they differ, as `ingest --target-lang`); scored are the target's tokens and
  the final `</s>`, not the forced `__tgt__` (the model is told it, it does not predict it).
  Logits: the decoder output times the shared embedding (SeamlessM4T ties its LM head to it).
- `generate`: greedy from `</s> __tgt__`, at most `max_new_tokens` new tokens, stopping at `</s>`;
  every row starts from two tokens, so a batch decodes in lockstep as its rows alone.
Sites: every encoder and decoder site by name (`speech.L{i}.ffn1`, `text.L{i}.ffn`,
`decoder.L{i}.cross_attn.v`, ...); a clamp on an encoder site acts while that encoder runs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.common.clamps import Clamp, clamped
from actstore.ingest.adapters.common.decode import greedy, target_scores
from actstore.ingest.adapters.common.sites import Site, named_sites
from actstore.ingest.adapters.seamless_m4t_v2 import decoding
from actstore.ingest.items import Item


def seamless_sites(adapter) -> dict[str, Site]:
    """Every neuron site of a loaded SeamlessM4T v2 adapter, by name (loads its decoder)."""
    return named_sites({"speech": decoding.speech_sites(adapter.speech_encoder),
                        "text": decoding.text_sites(adapter.text_encoder),
                        "decoder": decoding.decoder_sites(adapter._load_decoder())})


def _hidden(adapter, ids: torch.Tensor, mask: torch.Tensor | None, enc: torch.Tensor,
            src: torch.Tensor) -> torch.Tensor:
    """The decoder's output [B, T, d] (after its final LayerNorm: what the LM head reads)."""
    return adapter._load_decoder()(input_ids=ids, attention_mask=None if mask is None else mask.long(),
                                   use_cache=False, encoder_hidden_states=enc,
                                   encoder_attention_mask=src.long()).last_hidden_state


def _head(adapter):
    """The LM head: SeamlessM4T ties it to the shared embedding (refused otherwise)."""
    if not getattr(adapter.config, "tie_word_embeddings", True):
        raise UnknownModelError(f"{adapter.model_name} does not tie its LM head to the shared embedding; "
                                "interventions need a standard SeamlessM4T v2 checkpoint.")
    weight = adapter._load_decoder().embed_tokens.weight
    return lambda h: h @ weight.T


def target_loglik(adapter, items: Sequence[Item], clamps: Sequence[Clamp], conditioning: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the summed log-probability of its target tokens and their count (module doc)."""
    tok = adapter.tokenizer
    ids, mask = decoding.target_ids(tok, items, adapter.config.decoder_start_token_id,
                                    adapter._lang_code, adapter.device)
    labels = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], tok.eos_token_id)], 1)
    labels[torch.arange(len(items)), mask.sum(1) - 1] = tok.eos_token_id  # the last read token predicts </s>
    scored = mask.clone()
    scored[:, 0] = False  # </s> predicts the forced __tgt__: not part of the target
    with torch.no_grad(), clamped(seamless_sites(adapter), clamps):
        hidden = _hidden(adapter, ids, mask, *adapter.encode_source(items, conditioning))
        return target_scores(_head(adapter), hidden, labels, scored)


def generate(adapter, items: Sequence[Item], clamps: Sequence[Clamp], max_new_tokens: int,
             conditioning: str) -> list[str]:
    """Greedy decoding into each item's target language (module doc)."""
    tok, cfg = adapter.tokenizer, adapter.config
    langs = [tok.convert_tokens_to_ids(f"__{adapter._lang_code(it.target_lang or it.lang)}__") for it in items]
    ids = torch.tensor([[cfg.decoder_start_token_id, lang] for lang in langs], device=adapter.device)
    with torch.no_grad(), clamped(seamless_sites(adapter), clamps):
        enc, src = adapter.encode_source(items, conditioning)
        head = _head(adapter)
        rows = greedy(lambda x: head(_hidden(adapter, x, None, enc, src)[:, -1]), ids, [tok.eos_token_id],
                      max_new_tokens, cfg.max_position_embeddings)
    return [tok.decode(r, skip_special_tokens=True).strip() for r in rows]
