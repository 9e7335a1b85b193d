"""Whisper's part of the interventions (`actstore.ingest.interventions`): its neuron sites by name and
the teacher-forced target log-likelihood with clamps applied.

It reads the Whisper adapter's own parts (decoder, encoder, tokenizer, feature extractor), so it
lives with the family; the generic machinery (clamps, reference values, neuron sets) does not.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from actstore.ingest.adapters.common.sites import Site
from actstore.ingest.adapters.whisper import decoding
from actstore.ingest.adapters.common.clamps import Clamp, clamped
from actstore.ingest.items import SAMPLE_RATE, Item


def whisper_sites(adapter) -> dict[str, Site]:
    """Every neuron site of a loaded Whisper adapter, by name (loads its decoder)."""
    dec = adapter._load_decoder()
    out: dict[str, Site] = {}
    for stack, layers in (("speech", decoding.encoder_sites(adapter.encoder)),
                          ("decoder", decoding.decoder_sites(dec))):
        for i, sites in enumerate(layers, 1):
            out.update({f"{stack}.L{i}.{kind}": site for kind, site in sites.items()})
    return out


def target_loglik(adapter, items: Sequence[Item], clamps: Sequence[Clamp] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the summed log-probability of its target tokens (teacher-forced, every token
    after the task prefix, `<|endoftext|>` included) and their count.

    Each clip is padded to the window on its own and the decoder's right padding never reaches a
    valid position, so a padded batch gives each item's numbers alone (up to float round-off).
    """
    dec = adapter._load_decoder()
    sites = whisper_sites(adapter)
    fe, enc = adapter.feature_extractor, adapter.encoder
    feats = [fe(np.asarray(it.audio, dtype=np.float32), sampling_rate=SAMPLE_RATE,
                return_tensors="pt")["input_features"] for it in items]
    x = torch.cat(feats).to(adapter.device, adapter.torch_dtype)
    ids, mask = decoding.target_ids(adapter.tokenizer, items, adapter.device,
                                     adapter.config.max_target_positions)
    end = adapter.tokenizer.convert_tokens_to_ids(decoding.END)
    lengths = mask.sum(1)
    labels = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], end)], 1)
    labels[torch.arange(len(items)), lengths - 1] = end  # each row's last read token predicts the end
    with torch.no_grad(), clamped(sites, clamps):
        h = dec(input_ids=ids, attention_mask=mask.long(), use_cache=False,
                encoder_hidden_states=enc(input_features=x).last_hidden_state).last_hidden_state
        logp = torch.log_softmax((h @ dec.embed_tokens.weight.T).float(), -1)
    tok = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    scored = mask.clone()
    scored[:, : len(decoding.PREFIX) - 1] = False  # the prefix's own predictions are not the target
    return ((tok * scored).sum(1).cpu().numpy().astype(np.float64),
            scored.sum(1).cpu().numpy().astype(np.int64))
