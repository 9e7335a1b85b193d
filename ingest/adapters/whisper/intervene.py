"""Whisper's side of the intervention protocol (`Adapter.intervention_sites`, `target_loglik`,
`generate`, `first_step_language_probs`): the adapter's methods call these.

It reads the Whisper adapter's own parts (decoder, encoder, tokenizer, feature extractor), so it
lives with the family; the generic machinery (clamps, reference values, neuron sets) does not.
Whisper decodes speech-conditioned only.

- `target_loglik`: teacher-forced over `<|startoftranscript|> <|xx|> <|transcribe|>
  <|notimestamps|> " text"` with the item's own language token; scored are the text tokens and
  the final `<|endoftext|>` (the prefix's own predictions are not the target).
- `first_step_language_probs`: the decoder's distribution at its first step (after
  `<|startoftranscript|>`) renormalised over the language tokens, as Whisper's own language
  detection does; the number is the item's language's share.
- `generate`: greedy, as Whisper runs without a language hint: the language token is the
  model's own choice at the first step (the argmax over language tokens, so a clamp that moves
  language identification shows in the output), then `<|transcribe|> <|notimestamps|>` are
  forced and at most `max_new_tokens` text tokens follow, stopping at `<|endoftext|>`. The
  checkpoint's `suppress_tokens` (every step) and `begin_suppress_tokens` (first text step) from
  its generation_config.json apply, as in Whisper's own decoding (the real-weights test checks
  the output equals transformers' `generate`).
Each clip is padded to the window on its own and decoder rows never read padding, so a padded
batch gives each item's numbers alone (up to float round-off).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from actstore.ingest.adapters.common.clamps import Clamp, clamped
from actstore.ingest.adapters.common.decode import reuse_encoding
from actstore.ingest.adapters.common.sites import Site
from actstore.ingest.adapters.whisper import decoding
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


def _encoded(adapter, items: Sequence[Item]) -> torch.Tensor:
    """The encoder output of each clip, padded to the window on its own (call under clamps).

    Reused for the same clips while nothing can change it (`common.decode.reuse_encoding`), so
    `target_loglik`, `first_step_language_probs` and `generate` of one batch under decoder
    clamps run the encoder once, not three times (it is most of their cost on CPU)."""
    def compute() -> torch.Tensor:
        fe = adapter.feature_extractor
        feats = [fe(np.asarray(it.audio, dtype=np.float32), sampling_rate=SAMPLE_RATE,
                    return_tensors="pt")["input_features"] for it in items]
        x = torch.cat(feats).to(adapter.device, adapter.torch_dtype)
        return adapter.encoder(input_features=x).last_hidden_state

    return reuse_encoding(adapter, adapter.encoder, items, "speech", compute)


def _logp(dec, ids: torch.Tensor, mask: torch.Tensor | None, enc: torch.Tensor) -> torch.Tensor:
    h = dec(input_ids=ids, attention_mask=None if mask is None else mask.long(), use_cache=False,
            encoder_hidden_states=enc).last_hidden_state
    return torch.log_softmax((h @ dec.embed_tokens.weight.T).float(), -1)


def target_loglik(adapter, items: Sequence[Item], clamps: Sequence[Clamp] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the summed log-probability of its target tokens and their count (module doc)."""
    dec = adapter._load_decoder()
    ids, mask = decoding.target_ids(adapter.tokenizer, items, adapter.device,
                                     adapter.config.max_target_positions)
    end = adapter.tokenizer.convert_tokens_to_ids(decoding.END)
    lengths = mask.sum(1)
    labels = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], end)], 1)
    labels[torch.arange(len(items)), lengths - 1] = end  # each row's last read token predicts the end
    with torch.no_grad(), clamped(whisper_sites(adapter), clamps):
        logp = _logp(dec, ids, mask, _encoded(adapter, items))
    tok = logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    scored = mask.clone()
    scored[:, : len(decoding.PREFIX) - 1] = False  # the prefix's own predictions are not the target
    return ((tok * scored).sum(1).cpu().numpy().astype(np.float64),
            scored.sum(1).cpu().numpy().astype(np.int64))


def language_ids(tokenizer, items: Sequence[Item] = ()) -> list[int]:
    """Token ids of every Whisper language token the tokenizer has (plus the items' own)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    ids = {tokenizer.convert_tokens_to_ids(f"<|{c}|>") for c in LANGUAGES}
    ids |= {decoding.language_token(tokenizer, it.lang) for it in items}
    return sorted(i for i in ids if i is not None and i != tokenizer.unk_token_id)


def first_step_language_probs(adapter, items: Sequence[Item], clamps: Sequence[Clamp] = ()) -> np.ndarray:
    """Per item: P(its language token | <|startoftranscript|>) over the language tokens."""
    dec = adapter._load_decoder()
    tok = adapter.tokenizer
    langs = torch.tensor(language_ids(tok, items), device=adapter.device)
    own = [decoding.language_token(tok, it.lang) for it in items]
    sot = torch.full((len(items), 1), tok.convert_tokens_to_ids(decoding.PREFIX[0]), device=adapter.device)
    with torch.no_grad(), clamped(whisper_sites(adapter), clamps):
        first = _logp(dec, sot, None, _encoded(adapter, items))[:, 0, langs]
    p = torch.softmax(first, -1)
    col = {int(t): j for j, t in enumerate(langs.tolist())}
    return p[torch.arange(len(items)), [col[t] for t in own]].cpu().numpy().astype(np.float64)


def suppressed(path) -> tuple[list[int], list[int]]:
    """(suppress_tokens, begin_suppress_tokens) of the checkpoint's generation config ([] if none)."""
    from transformers import GenerationConfig

    try:
        cfg = GenerationConfig.from_pretrained(path, local_files_only=True)
    except OSError:  # no generation_config.json: nothing suppressed
        return [], []
    return list(cfg.suppress_tokens or []), list(cfg.begin_suppress_tokens or [])


def _step(dec, ids: torch.Tensor, enc: torch.Tensor, cache):
    """One cached decoder forward over `ids` (the new tokens): the last position's log-probs and the
    cache (transformers 5 names it `cache`, 4 `past_key_values`). The cache keeps what the clamp
    hooks wrote (self-attention k/v of past tokens, cross-attention k/v computed once), so cached
    greedy decoding equals recomputing every step."""
    import inspect

    name = "cache" if "cache" in inspect.signature(dec.forward).parameters else "past_key_values"
    out = dec(input_ids=ids, encoder_hidden_states=enc, use_cache=True, **{name: cache})
    h = out.last_hidden_state[:, -1]
    return torch.log_softmax((h @ dec.embed_tokens.weight.T).float(), -1), getattr(out, name)


def generate(adapter, items: Sequence[Item], clamps: Sequence[Clamp] = (), max_new_tokens: int = 48) -> list[str]:
    """Greedy transcription of each item, language chosen by the model (module doc)."""
    dec = adapter._load_decoder()
    tok = adapter.tokenizer
    dev = adapter.device
    langs = torch.tensor(language_ids(tok, items), device=dev)
    end = tok.convert_tokens_to_ids(decoding.END)
    forced = torch.tensor([tok.convert_tokens_to_ids(t) for t in decoding.PREFIX[2:]], device=dev)
    sot = torch.full((len(items), 1), tok.convert_tokens_to_ids(decoding.PREFIX[0]), device=dev)
    done = torch.zeros(len(items), dtype=torch.bool, device=dev)
    always, begin = suppressed(adapter.path)
    room = adapter.config.max_target_positions - 1 - len(decoding.PREFIX)
    text: list[torch.Tensor] = []
    with torch.no_grad(), clamped(whisper_sites(adapter), clamps):
        enc = _encoded(adapter, items)
        logp, cache = _step(dec, sot, enc, None)
        lang = langs[logp[:, langs].argmax(-1)]
        nxt = torch.cat([lang[:, None], forced.expand(len(items), -1)], 1)
        for step in range(min(max_new_tokens, room)):  # lockstep: every row has the same length
            logp, cache = _step(dec, nxt, enc, cache)
            logp[:, always + (begin if step == 0 else [])] = -torch.inf
            new = torch.where(done, torch.full_like(lang, end), logp.argmax(-1))
            text.append(new)
            done |= new == end
            if bool(done.all()):
                break
            nxt = new[:, None]
    rows = torch.stack(text, 1).tolist() if text else [[] for _ in items]
    return [tok.decode([t for t in row if t != end], skip_special_tokens=True).strip() for row in rows]
