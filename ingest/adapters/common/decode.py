"""What the intervention protocol's decoding needs whatever the family: the score of a
teacher-forced target, and greedy decoding in lockstep.

Why here: SeamlessM4T v2's shared text decoder and a decoder-only LLM score and decode their
targets the same way; only how the logits are made differs (each family passes a function).
Every encoder-decoder family (Whisper too) reuses its encoder output through `reuse_encoding`.
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

import numpy as np
import torch

T = TypeVar("T")


def target_scores(head: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor, labels: torch.Tensor,
                  scored: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the summed log-probability (float64) of `labels` (the token each position
    predicts) over the `scored` positions, and how many were scored (int64).

    hidden [B, T, d] (the states the LM head reads); labels [B, T] long; scored [B, T] bool.
    The head runs on the scored positions only: a vocabulary of 150k-256k tokens over every
    position of a long prompt would cost gigabytes for nothing.
    """
    logp = torch.log_softmax(head(hidden[scored]).float(), -1)
    tok = logp.gather(-1, labels[scored].unsqueeze(-1)).squeeze(-1).double()
    rows = scored.nonzero()[:, 0]
    sums = torch.zeros(hidden.shape[0], dtype=torch.float64, device=hidden.device).index_add_(0, rows, tok)
    return sums.cpu().numpy(), scored.sum(1).cpu().numpy().astype(np.int64)


def greedy(last_logits: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, ends: Sequence[int],
           max_new_tokens: int, max_len: int | None = None) -> list[list[int]]:
    """Greedy decoding of equal-length prefixes `ids` [B, T0], all rows in lockstep (no padding:
    every row has the same length at every step, so a batch decodes as its rows alone).

    `last_logits(ids)` returns the next-token scores [B, V] after `ids`. A row stops at its first
    token in `ends`; at most `max_new_tokens` are added (and never past `max_len` in all).
    Returns each row's new tokens, the end token excluded.
    """
    end_ids = torch.tensor(list(ends), device=ids.device)
    start = ids.shape[1]
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    for _ in range(max_new_tokens):
        if max_len is not None and ids.shape[1] >= max_len:
            break
        nxt = last_logits(ids).argmax(-1)
        nxt = torch.where(done, end_ids[0].expand_as(nxt), nxt)
        ids = torch.cat([ids, nxt[:, None]], 1)
        done |= torch.isin(nxt, end_ids)
        if bool(done.all()):
            break
    out = []
    for row in ids[:, start:].tolist():
        cut = next((i for i, t in enumerate(row) if t in set(ends)), len(row))
        out.append(row[:cut])
    return out


def reuse_encoding(owner, encoder: torch.nn.Module, items: Sequence, what: str,
                   compute: Callable[[], T]) -> T:
    """`compute()` (an encoder's output for `items`), or the owner's last result for the same
    items while nothing can have changed it: the encoder carries no hook (a clamp on an encoder
    site, anyone's capture: always recomputed) and its weights are unchanged (their in-place
    version counters are in the key). One slot per owner.

    Why: an intervention on decoder sites runs the baseline and every neuron set, each for the
    log-likelihood and the greedy output, over the same batch; the encoder output is the same
    for all of them and often most of their cost.
    """
    hooked = any(m._forward_hooks or m._forward_pre_hooks for m in encoder.modules())
    key = (what, tuple((it.lang, it.sample_id, _digest(it, what)) for it in items),
           tuple(p._version for p in encoder.parameters()))
    memo = getattr(owner, "_encoding_memo", None)
    if not hooked and memo is not None and memo[0] == key:
        return memo[1]
    out = compute()
    owner._encoding_memo = None if hooked else (key, out)
    return out


def _digest(item, what: str) -> bytes:
    import hashlib

    data = np.asarray(item.audio, np.float32).tobytes() if what == "speech" else (item.text or "").encode()
    return hashlib.blake2b(data, digest_size=16).digest()
