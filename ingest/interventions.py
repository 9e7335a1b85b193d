"""Interventions: hold a set of neurons at fixed values while a model runs, and measure the change
of the teacher-forced target log-likelihood per token (issue 16, item 4; Whisper only for now).

Mechanism: the adapters' own PyTorch hooks on the modules that define the neuron sites
(`adapters/common/clamps.py`); each family gives its sites by name and its target likelihood
(Whisper: `adapters/whisper/intervene.py`). This module chooses the units and their values.

Values (`reference_values`) are read from the store: `median` or `mean` per unit over EVERY stored
row of that site of the model (all languages, both modalities, every corpus) -- the study's
default. The stored vectors are means over positions, so this is the median (mean) of POOLED
activations, not of single positions: a deliberate choice, since the store holds nothing finer.
`zero` needs no store.

Controls beside every chosen set, each of its size and from its site:
- `random`: units drawn uniformly (one set per seed);
- `matched` (displacement-matched): a unit's DISPLACEMENT is how far its clamp moves it, the mean
  |value - stored pooled activation| over the reference rows (value = that unit's clamp value:
  its median, mean or zero). Selective units sit far from the all-language median, so a plain
  random set is moved less and cannot tell "specific" from "bigger push". The matched set takes,
  for each chosen unit in a seeded random order, one of the `MATCH_POOL` not yet taken units of
  the site outside the chosen set whose displacement is nearest to it (seeded pick among them, so
  each seed gives its own set; without replacement). Rows store each set's mean displacement, so
  the match can be checked.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from actstore.errors import ActstoreError
from actstore.ingest.adapters.common.sites import parse_name

VALUE_KINDS = ("median", "mean", "zero")
#: how many nearest-displacement candidates a matched control picks each unit from
MATCH_POOL = 3


def reference_values(store, model: str, site: str, units: Sequence[int], kind: str) -> np.ndarray:
    """Per unit: `median`/`mean` over every stored row of `site` (all languages, both modalities,
    every corpus: pooled vectors, see the module doc), or `zero`."""
    if kind not in VALUE_KINDS:
        raise ActstoreError(f"Unknown value {kind!r}; use one of {', '.join(VALUE_KINDS)}.")
    if kind == "zero":
        return np.zeros(len(units), np.float32)
    return unit_values(reference_rows(store, model, site, kind), kind)[list(units)]


def reference_rows(store, model: str, site: str, why: str) -> np.ndarray:
    """Every stored row of `site` [rows, width] (float32), or one sentence when there is none."""
    sl = store.read(model, points=site)
    if sl.meta.height == 0:
        raise ActstoreError(f"The store holds no rows of site {site!r} for model {model!r}, so its "
                            f"{why} is undefined; ingest that site first or use --value zero.")
    return np.asarray(sl.vectors, np.float32)


#: columns per chunk when reducing reference rows in float64 (bounds memory at wide sites)
CHUNK = 1024


def unit_values(rows: np.ndarray, kind: str) -> np.ndarray:
    """The clamp value of every unit of a site: its median/mean over `rows`, or zero."""
    if kind == "zero":
        return np.zeros(rows.shape[1], np.float32)
    out = np.empty(rows.shape[1], np.float32)
    for j in range(0, rows.shape[1], CHUNK):
        x = rows[:, j:j + CHUNK].astype(np.float64)
        out[j:j + CHUNK] = np.median(x, 0) if kind == "median" else x.mean(0)
    return out


def displacements(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per unit: mean |value - stored activation| over the reference rows (module doc)."""
    out = np.empty(rows.shape[1], np.float64)
    for j in range(0, rows.shape[1], CHUNK):
        out[j:j + CHUNK] = np.abs(rows[:, j:j + CHUNK].astype(np.float64) - values[j:j + CHUNK]).mean(0)
    return out


def matched_units(disp: np.ndarray, chosen: Sequence[int], seed: int, site: str) -> tuple[int, ...]:
    """A displacement-matched control of `chosen` (module doc), drawn with `seed`."""
    chosen = [int(u) for u in chosen]
    free = np.setdiff1d(np.arange(len(disp)), chosen)
    if len(free) < len(chosen):
        raise ActstoreError(f"A matched control of {len(chosen)} units needs as many other units of site "
                            f"{site!r} (it has {len(free)}); choose k <= {len(disp) // 2} or --controls random.")
    rng = np.random.default_rng(seed)
    out = []
    for u in rng.permutation(chosen):
        near = np.argsort(np.abs(disp[free] - disp[u]), kind="stable")[:MATCH_POOL]
        pick = int(rng.choice(near))
        out.append(int(free[pick]))
        free = np.delete(free, pick)
    return tuple(sorted(out))


def top_units(store, model: str, site: str, k: int, target: str | None, width: int) -> tuple[int, ...]:
    """The k best-ranked units of `site` in the stored `neuron_sites_top` table (`target`: one
    language or class; None: the first stored target)."""
    from actstore.schema import NEURON_SITES_TOP_TABLE

    check_k(k, width, site)
    top = store.read_results(NEURON_SITES_TOP_TABLE)
    if top is not None:
        top = top.filter((top["model"] == model) & (top["depth"] == site))
        if target is not None:
            top = top.filter(top["target"] == target)
    if top is None or top.height == 0:
        raise ActstoreError(f"No stored top neurons for site {site!r} of {model!r}"
                            f"{' and target ' + target if target else ''}; run `actstore analyze "
                            "neurons --sites` first or pass --units.")
    # one ranking: high activation = the target ("positive") where stored, then a fixed order of
    # the comparisons (`within`), so the chosen units never depend on the stored row order
    top = top.with_columns((top["direction"] != "positive").alias("_not_positive"))
    first = top.sort("_not_positive", "target", "within", "rank").row(0, named=True)
    top = top.filter((top["target"] == first["target"]) & (top["direction"] == first["direction"])
                     & (top["within"] == first["within"])).sort("rank")
    if top.height < k:
        raise ActstoreError(f"Only {top.height} top neurons are stored for {site!r}; ask for k <= {top.height}.")
    return tuple(int(u) for u in top["neuron"][:k])


def check_k(k: int, width: int, site: str) -> None:
    if not 1 <= k <= width:
        raise ActstoreError(f"k={k} is outside site {site!r}'s width (1..{width}); choose a smaller k.")


def random_units(width: int, k: int, seed: int, site: str) -> tuple[int, ...]:
    """A random control: k distinct units of the same site, drawn with `seed`."""
    check_k(k, width, site)
    return tuple(int(u) for u in np.sort(np.random.default_rng(seed).choice(width, k, replace=False)))


def parse_units(text: str, width: int, site: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in text.split(",") if u.strip())
    except ValueError:
        raise ActstoreError(f"--units {text!r} is not a comma-separated list of integers.") from None
    bad = [u for u in units if not 0 <= u < width]
    if not units or bad:
        raise ActstoreError(f"--units {bad or text!r} fall outside site {site!r}'s width (0..{width - 1}).")
    return units


def known_site(name: str) -> None:
    """Refuse a name that is not a site at all (before any model loads)."""
    parsed = parse_name(name)
    if parsed is None or parsed[2] is None:
        raise ActstoreError(f"{name!r} is not a neuron site; use stack.L<i>.<kind>, e.g. decoder.L1.ffn.")
