"""What an intervention changed, per sentence and per (language, conditioning) row, with
bootstrap intervals over sentences.

Per sentence (`measure`): the teacher-forced target log-likelihood and its token count, the
first-step language probability where the family has one (Whisper's language token), and with
`--generate` the py3langid code of the greedy output. Per row (`compare`), without and with the
clamp: log-likelihood per token (sum over sentences / tokens), mean first-step probability, and
the share of outputs identified as the expected language (the target's: the sentence's own
language for transcription, `--target-lang` for translation); their differences get a percentile
bootstrap interval (95%) over sentences, resampled with replacement with a fixed seed
(`BOOT_SEED`), the same resamples for every set of a row, so the chosen set and its controls are
compared on the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from actstore.ingest import language_id
from actstore.ingest.items import Item

BOOT_SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class Outcome:
    """Per-sentence numbers of one condition (no clamp, or one clamped set)."""

    loglik: np.ndarray                   # summed log-probability of the target tokens
    n_tokens: np.ndarray
    lang_prob: np.ndarray | None         # first-step probability of the language (None: no such step)
    said: list[str | None] | None        # py3langid code of each greedy output (None: no --generate)


def measure(adapter, items: Sequence[Item], clamp_sets: Sequence[Sequence], *, conditioning: str,
            max_new_tokens: int, batch_size: int) -> list[Outcome]:
    """One `Outcome` per entry of `clamp_sets` (e.g. [] for the baseline, then each set's clamps)
    over `items`; `max_new_tokens` 0: no generation. Batch-major: every condition of a batch runs
    before the next batch, so a family may reuse what the clamps cannot change (Whisper keeps the
    last encoder output: decoder-site interventions then run the encoder once per batch)."""
    parts = [([], [], [], []) for _ in clamp_sets]
    for i in range(0, len(items), batch_size):
        batch = items[i:i + batch_size]
        for clamps, (ll, n, probs, said) in zip(clamp_sets, parts):
            a, b = adapter.target_loglik(batch, clamps, conditioning=conditioning)
            ll.append(a)
            n.append(b)
            probs.append(adapter.first_step_language_probs(batch, clamps) if conditioning == "speech" else None)
            if max_new_tokens:
                said += language_id.identify(adapter.generate(batch, clamps, max_new_tokens=max_new_tokens,
                                                              conditioning=conditioning))
    return [Outcome(np.concatenate(ll), np.concatenate(n),
                    None if any(p is None for p in probs) else np.concatenate(probs),
                    said if max_new_tokens else None) for ll, n, probs, said in parts]


def draws(n: int, boot: int) -> np.ndarray:
    """[boot, n] sentence indices drawn with replacement (seeded: the same for every set)."""
    return np.random.default_rng(BOOT_SEED).integers(0, n, size=(boot, n))


def interval(before: np.ndarray, after: np.ndarray, den: np.ndarray, idx: np.ndarray
             ) -> tuple[float | None, float | None]:
    """Percentile interval of sum(after - before) / sum(den) over the resamples `idx`."""
    if idx.shape[0] == 0:  # --boot 0: no interval
        return None, None
    stat = (after - before)[idx].sum(1) / den[idx].sum(1)
    lo, hi = np.quantile(stat, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(lo), float(hi)


def _pair(name: str, before: np.ndarray, after: np.ndarray, den: np.ndarray, idx: np.ndarray) -> dict:
    b, a = before.sum() / den.sum(), after.sum() / den.sum()
    lo, hi = interval(before, after, den, idx)
    return {name: float(b), f"clamped_{name}": float(a), f"{name}_delta": float(a - b),
            f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def compare(base: Outcome, clamped: Outcome, rows: np.ndarray, expected: str | None, idx: np.ndarray) -> dict:
    """The row's columns for sentences `rows` (a boolean mask; `expected`: the py3langid code of
    their target language), with intervals over the resamples `idx` (indices into those sentences)."""
    out: dict = {"n_sentences": int(rows.sum()), "n_tokens": int(base.n_tokens[rows].sum())}
    ll = _pair("loglik_per_token", base.loglik[rows], clamped.loglik[rows], base.n_tokens[rows].astype(float), idx)
    out.update({"loglik_per_token": ll["loglik_per_token"],
                "clamped_loglik_per_token": ll["clamped_loglik_per_token"],
                "delta_per_token": ll["loglik_per_token_delta"],
                "ci_low": ll["loglik_per_token_ci_low"], "ci_high": ll["loglik_per_token_ci_high"]})
    ones = np.ones(int(rows.sum()))
    out.update(_pair("lang_prob", base.lang_prob[rows], clamped.lang_prob[rows], ones, idx)
               if base.lang_prob is not None else dict.fromkeys(_columns("lang_prob")))
    if base.said is not None:
        said = [(b, a) for b, a, keep in zip(base.said, clamped.said, rows) if keep]
        hits = np.array([[b == expected, a == expected] for b, a in said], float).reshape(-1, 2)
        out.update(_pair("lang_share", hits[:, 0], hits[:, 1], ones, idx))
        tops = [language_id.as_catalogue(a) for _, a in said if a is not None]
        out["clamped_top_lang"] = max(sorted(set(tops)), key=tops.count) if tops else None
    else:
        out.update(dict.fromkeys(_columns("lang_share")), clamped_top_lang=None)
    return out


def _columns(name: str) -> list[str]:
    return [name, f"clamped_{name}", f"{name}_delta", f"{name}_ci_low", f"{name}_ci_high"]


#: the float columns `compare` may leave null (typed so a first all-null write stores floats)
NULLABLE_FLOATS = tuple(_columns("lang_prob") + _columns("lang_share"))
