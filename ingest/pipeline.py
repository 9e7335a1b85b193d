"""The ingest pipeline: source items -> adapter (batched, hooked) -> pooled rows -> store.

Unit of work: a *job* = (language, modality), or (language, speech+text) for `paired` adapters
that see a sentence's speech and text in one forward. A job's rows at every requested point are
written in ONE commit per vector width, so an interrupted ingest leaves complete jobs and nothing
half-written; a rerun skips the sample ids already stored at every requested point (resume) and
replaces keys it recomputes (`--overwrite`, or items that miss only some points), so nothing is
ever duplicated.

Crash safety (a kill at ANY point; issue 10, item 5). Every commit is atomic, and their order
makes each state after a kill one that the next ingest completes without help:

1. The job's sentence texts are upserted BEFORE its activations (keyed, idempotent), so stored
   activations always imply stored texts. A kill between the two leaves texts without rows: the
   rerun encodes the job and upserts the same texts again. (Stores written before this order could
   hold rows without texts: `fill_missing_texts` writes those from the source, no model needed.)
2. Activations: one keyed commit per width. A kill between widths leaves some points of the
   job's items stored: those items count as partial and are recomputed with a keyed replace.
3. Points are registered after the job's first activation commit (a failed write must not leave
   points without a table). A kill before the registration leaves rows the store does not list:
   the rerun sees nothing stored, encodes again and the keyed insert drops the rows it already has.
4. Finalize (compaction, indices, old-version cleanup) runs whenever `finalize_needed` says the
   store needs it, not only when this run wrote rows, so a finalize killed half-way is redone.
   Old versions are dropped only when no other live ingest may still read them
   (`other_live_runs`); otherwise the last (or the next) ingest drops them.
5. The runs row records host, pid and process start; every ingest first marks this host's
   `running` runs whose process is gone as `interrupted` (`mark_stale_runs`).

`ACTSTORE_FAULT=phase[:k]` kills the process at a named phase to test exactly this
(`actstore.ingest.faults`; `tests/test_faults.py`, `scripts/fault_campaign.py`).

The steps are separate modules (`actstore.ingest.steps`) so both engines
(`actstore.ingest.engines`) reuse them (the Ray engine plans and filters on the driver, encodes
on workers and writes each job with `write_job`):

    inputs.check_request -> inputs.open_inputs -> planning.prepare_plan   (no model runs yet)
    -> planning.pending_jobs (per job, once: what is stored, which keys to encode)
    -> batching.check_memory (every pending item against --max-seconds / --memory-budget)
    -> engine, per job: encoding.encode_job (length-bucketed batches under the memory budget)
       -> rows.build_job_tables -> writing.write_job (texts, then one commit per width)
    -> writing.finalize (compact + index)

`ingest` runs them in order inside a provenance record (`runs` table). `on_phase(name, job)` is
called before each named phase (`PHASES`), so tests can inject faults exactly there.
Pooling is a masked mean in float32 inside the adapter.

This module is the public API (`ingest`, `IngestRequest`, ...); it imports the engines and the
steps, and neither imports it.
"""

from __future__ import annotations

import logging
from typing import Callable

from actstore.disk_faults import disk_errors
from actstore.store import Store
from actstore.store.runs import mark_stale_runs
from actstore.ingest.engines.local import run_local
from actstore.ingest.engines.ray_engine import run_ray
from actstore.ingest.faults import with_fault
from actstore.ingest.memory import parse_size, resolve_limits
from actstore.ingest.steps.batching import KEEP_LOADED_BYTES, batches, check_memory
from actstore.ingest.steps.inputs import check_request, open_inputs
from actstore.ingest.steps.jobs import PHASES, IngestPlan, IngestRequest, IngestSummary, Job, JobWork, PhaseHook, phase
from actstore.ingest.steps.planning import choose_points, pending_jobs, pending_work, prepare_plan, study_layers
from actstore.ingest.steps.rows import job_rows
from actstore.ingest.steps.targets import attach as attach_targets, resolve_targets
from actstore.ingest.steps.writing import PointRegistration, finalize, finish_cleanup, provenance

#: the public API: the entry point, its request and summary, the shared job types, and the steps
#: that callers outside the package use (tests, benchmarks); the rest is in `actstore.ingest.steps`
__all__ = ["PHASES", "IngestPlan", "IngestRequest", "IngestSummary", "Job", "JobWork", "batches",
           "ingest", "job_rows", "open_inputs", "pending_work", "prepare_plan", "study_layers"]

log = logging.getLogger("actstore.ingest")


@disk_errors
def ingest(store: Store | Callable[[], Store], request: IngestRequest, *, progress: bool = True,
           on_phase: PhaseHook | None = None) -> IngestSummary:
    """Run one ingest; returns what was done.

    store: the store, or a function that opens (or creates) it: called only once the request,
    its inputs and the model have passed their checks, so a refused ingest creates no store.

    Bad input raises ActstoreError before anything is written (no runs row); that includes items
    over `--max-seconds` or the memory budget and undecodable audio, since `check_memory` reads
    every pending item before the first forward. A failure after the run started (NaN
    activations, a full disk) keeps the jobs committed before it, writes nothing of the failing
    job and leaves the run's row with status 'failed'.

    `request.engine` picks who runs the model: "local" (this process, `engines.local`) or "ray"
    (Ray Data actors, `engines.ray_engine`). Planning, resume filtering (the store is read once
    per job), the key-guarded write (one commit per job and width), provenance and finish are shared.
    """
    from actstore.ingest.adapters import load_adapter

    on_phase = with_fault(on_phase)
    check_request(request)
    catalogue, source, langs = open_inputs(request)
    ray = request.engine == "ray"
    # the Ray driver loads the model only to learn its points and widths: its actors load it
    # on request.device (the driver of a GPU cluster may have no GPU)
    adapter = load_adapter(request.model, adapter=request.adapter, options=request.adapter_options,
                           name=request.name, device="cpu" if ray else request.device, dtype=request.dtype)
    chosen = choose_points(adapter, request)  # unknown points are refused before a store exists
    targets = resolve_targets(request, adapter, source, langs, chosen[0])  # missing targets too
    if callable(store):
        store = store()
    phase(on_phase, "plan", None)
    plan = prepare_plan(store, request, adapter, catalogue, source, langs, chosen)
    attach_targets(plan.jobs, targets, request.target_lang)
    limits = resolve_limits(adapter, max_seconds=request.max_seconds,
                            memory_budget=parse_size(request.memory_budget), device=request.device)
    pending = pending_jobs(store, plan, overwrite=request.overwrite)
    # too long / too big: refused, nothing ran; Ray's actors read the payloads themselves
    kept = check_memory(plan, pending, adapter, limits, keep_bytes=0 if ray else KEEP_LOADED_BYTES)
    for stale in mark_stale_runs(store):
        log.warning("run %s was left running by a process that is gone: marked interrupted", stale)
    run_id = store.start_run(provenance(plan, request, limits))
    phase(on_phase, "run", None)
    summary = IngestSummary(run_id=run_id, model=plan.model, random_init=plan.info.random_init,
                            skipped_langs=dict(plan.skipped))
    for key, why in plan.skipped.items():
        log.warning("skipping %s: %s", key, why)
    register = PointRegistration(store, plan)
    status = "failed"
    deferred_cleanup = False
    try:
        bar = _progress(sum(len(j.ids) for j in plan.jobs), progress, desc=f"ingest {plan.model}")
        if ray:
            run_ray(store, plan, request, run_id, summary, bar, pending=pending, layer_of=adapter.layer_of,
                    on_phase=on_phase, register=register)
        else:
            run_local(store, plan, adapter, request, run_id, summary, bar, pending=pending, kept=kept,
                      on_phase=on_phase, register=register, limits=limits)
        bar.close()
        deferred_cleanup = finalize(store, plan.model, run_id, wrote=bool(summary.rows), on_phase=on_phase)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, status=status, n_items=summary.items, n_rows=summary.rows)
    if deferred_cleanup:
        finish_cleanup(store, plan.model, run_id)
    return summary


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sent")
