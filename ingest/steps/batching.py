"""Batching under the memory budget, and the check that every pending item fits it.

`check_memory` runs before the run starts and reads every pending item (it needs the lengths,
and an undecodable file must fail before anything is written). It keeps the loaded items of the
first jobs while their payloads stay under `KEEP_LOADED_BYTES`, so that the local engine encodes
those jobs without reading them again; the items of later jobs are dropped and read again when
their turn comes, so the memory an ingest holds stays bounded however large the study is.
`batches` and `batch_groups` cut a job's items into the forwards that `encoding` runs.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

from actstore.ingest.adapters.base import Adapter
from actstore.ingest.items import Item
from actstore.ingest.memory import BatchCost, MemoryLimits, budgeted_batches, check_items
from actstore.ingest.steps.jobs import IngestPlan, JobKeys, JobWork
from actstore.ingest.steps.planning import load_work

#: payload bytes (decoded audio, texts) that `check_memory` keeps for the run instead of reading
#: them twice; beyond it, later jobs are read again (about 45 min of 16 kHz float32 audio)
KEEP_LOADED_BYTES = 256 * 1024**2


def batches(items: list[Item], batch_size: int, cost: Callable[[list[Item]], int] | None = None,
            budget: int | None = None) -> list[list[Item]]:
    """Length-bucketed batches: longest first, so padding inside a batch stays small; with a
    `cost` (estimated bytes of a batch) and a `budget`, each batch also stays under the budget."""
    return budgeted_batches(items, batch_size, cost, budget)


def batch_groups(work: JobWork, batch_size: int, cost: BatchCost | None = None,
                 budget: int | None = None) -> Iterator[dict[str, list[Item]]]:
    """Batches of one modality, or paired speech/text batches bucketed by speech length."""
    mods = work.job.modalities
    if len(mods) == 1:
        m = mods[0]
        one = (lambda batch: cost({m: batch})) if cost is not None else None
        for batch in batches(work.items[m], batch_size, one, budget):
            yield {m: batch}
        return
    text_of = {it.sentence_id: it for it in work.items["text"]}
    pair = ((lambda batch: cost({"speech": batch, "text": [text_of[it.sentence_id] for it in batch]}))
            if cost is not None else None)
    for batch in batches(work.items["speech"], batch_size, pair, budget):
        yield {"speech": batch, "text": [text_of[it.sentence_id] for it in batch]}


def payload_bytes(items: Sequence[Item]) -> int:
    """Memory an item list holds beyond its keys: decoded audio, or the text's UTF-8 bytes."""
    return sum(it.audio.nbytes if it.audio is not None else len((it.text or "").encode("utf-8"))
               for it in items)


def check_memory(plan: IngestPlan, pending: Sequence[JobKeys], adapter: Adapter, limits: MemoryLimits,
                 *, keep_bytes: int = KEEP_LOADED_BYTES) -> dict[int, JobWork]:
    """Refuse, before any model runs, an item of any job that is over `--max-seconds` or whose
    forward alone would exceed the memory budget; returns the loaded work of the jobs it kept.

    Looks at exactly the items the run would encode (`pending`, one entry per job of the plan).
    The work of the first jobs is kept (job index -> work) while their payloads together stay
    within `keep_bytes`; the others are loaded here one job at a time and dropped again (0 keeps
    none: the Ray engine's actors read the payloads themselves).
    """
    cost = BatchCost(adapter)
    kept: dict[int, JobWork] = {}
    held = 0
    for index, keys in enumerate(pending):
        work = load_work(plan.source, keys)
        if len(keys.job.modalities) > 1:
            pairs = {it.sentence_id: it for it in work.items.get("text", [])}
            check_items(work.items.get("speech", []), limits, cost, pairs=pairs)
        else:
            for items in work.items.values():
                check_items(items, limits, cost)
        size = sum(payload_bytes(items) for items in work.items.values())
        if len(kept) == index and held + size <= keep_bytes:
            kept[index] = work
            held += size
    return kept
