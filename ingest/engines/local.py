"""`--engine local`: encode in this process, one job after another.

Each job: take its pending work (kept by the memory check, else loaded now), fill texts an older
store lacks, encode, build rows, write (texts, then one commit per width), register the points
after the first write. The phases reported on the way are `actstore.ingest.faults`'.
"""

from __future__ import annotations

from typing import Callable, Sequence

from actstore.store import Store
from actstore.ingest.adapters.base import Adapter
from actstore.ingest.memory import MemoryLimits
from actstore.ingest.steps.encoding import encode_job
from actstore.ingest.steps.jobs import IngestPlan, IngestRequest, IngestSummary, JobKeys, JobWork, PhaseHook, phase
from actstore.ingest.steps.planning import load_work
from actstore.ingest.steps.rows import build_job_tables, sentence_rows
from actstore.ingest.steps.writing import fill_missing_texts, write_job


def run_job(store: Store, plan: IngestPlan, adapter: Adapter, keys: JobKeys, request: IngestRequest,
            run_id: str, *, loaded: JobWork | None = None, on_batch: Callable[[int], object] | None = None,
            on_phase: PhaseHook | None = None, register: Callable[[], None] | None = None,
            limits: MemoryLimits | None = None) -> tuple[JobWork, int]:
    """Encode and write one job's pending `keys` (their `loaded` work, if the memory check kept
    it); returns its work and the rows written."""
    job = keys.job
    phase(on_phase, "filter", job)
    work = loaded if loaded is not None else load_work(plan.source, keys)
    fill_missing_texts(store, plan.source, request.split, keys)
    if not work.n_items:
        phase(on_phase, "job", job)
        return work, 0
    phase(on_phase, "encode", job)
    encoded = encode_job(adapter, work, request.batch_size, on_batch=on_batch,
                         budget=limits.budget if limits else None)
    phase(on_phase, "write", job)
    tables = build_job_tables(plan, encoded, layer_of=adapter.layer_of, run_id=run_id,
                              vector_dtype=request.vector_dtype, lang=job.lang)
    texts = work.items.get("text")
    sentences = sentence_rows(plan.source.text_source, request.split, job.lang, texts) if texts else None
    rows = write_job(store, plan.model, tables, vector_dtype=request.vector_dtype,
                     replace=work.replace, sentences=sentences, on_phase=on_phase, job=job)
    phase(on_phase, "rows", job)
    # Points are registered only AFTER the run's first write succeeded: a write that fails (a
    # full disk) must not leave registered points without a table, which breaks every reader.
    if register is not None:
        register()
    phase(on_phase, "job", job)
    return work, rows


def run_local(store: Store, plan: IngestPlan, adapter: Adapter, request: IngestRequest, run_id: str,
              summary: IngestSummary, bar, *, pending: Sequence[JobKeys], kept: dict[int, JobWork],
              on_phase: PhaseHook | None = None, register: Callable[[], None] | None = None,
              limits: MemoryLimits | None = None) -> None:
    """The local engine, called by `pipeline.ingest` inside its run record: every job in order.

    `pending` holds each job's keys (read once, before the run); `kept` the work the memory check
    already loaded, handed over (and dropped once encoded) so that it is not read twice.
    """
    for index, keys in enumerate(pending):
        work, rows = run_job(store, plan, adapter, keys, request, run_id, loaded=kept.pop(index, None),
                             on_batch=bar.update, on_phase=on_phase, register=register, limits=limits)
        summary.skipped_items += work.n_skipped
        if not work.n_items:
            bar.update(len(keys.job.ids))
            continue
        summary.rows += rows
        summary.items += work.n_items
        summary.jobs += 1
