"""One intervention request, from held-out sentences to stored rows: what `actstore intervene`
and a study file's `[[analyses.interventions]]` both ask for.

The CLI and the study runner used to assemble the same steps (conditionings, held-out items, the
run, the write) each on their own; a request object keeps one order of checks for both, so a
study's intervention gives the rows the command would (docs/ARCHITECTURE.md, Interventions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import polars as pl

from actstore.ingest.intervention_run import (CONTROLS, conditionings_for, held_out_items,
                                              run_intervention, save)


@dataclass(frozen=True)
class InterventionRequest:
    """Everything `intervene` takes besides the store and the model (module doc).

    `max_new_tokens` 0 means no generation (`--generate` off); `conditioning` None means every
    conditioning the family supports; `units` is a comma-separated list, exclusive with `top`.
    """

    site: str
    langs: Sequence[str]
    units: str | None = None
    top: int | None = None
    target: str | None = None
    value: str = "median"
    seeds: Sequence[int] = (0, 1, 2)
    controls: Sequence[str] = CONTROLS
    conditioning: str | None = None
    target_lang: str | None = None
    boot: int = 1000
    max_new_tokens: int = 0
    batch_size: int = 8
    source: str = "flores"
    data_dir: str | None = None
    split: str = "devtest"
    limit: int | None = None


def intervene(store, adapter, request: InterventionRequest) -> pl.DataFrame:
    """Check, run and store one request; the stored rows. Every refusal comes before any write."""
    r = request
    conds = conditionings_for(adapter, r.conditioning, r.max_new_tokens > 0)
    items, corpus = held_out_items(r.source, r.data_dir, list(r.langs), r.split, r.limit, conds, r.target_lang)
    frame = run_intervention(store, adapter, items, corpus, site=r.site, units=r.units, top=r.top,
                             target=r.target, value=r.value, seeds=[int(s) for s in r.seeds],
                             batch_size=r.batch_size, controls=list(r.controls), boot=r.boot,
                             max_new_tokens=r.max_new_tokens)
    save(store, frame)
    return frame
