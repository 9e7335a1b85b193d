"""Writing and finalize: what an ingest commits to the store, in the order that keeps it whole.

A job's sentence texts first, then its activations in one commit per vector width (so stored
activations imply stored texts); the points registered after the run's first write; the `runs`
row that records the run; finalize (compaction, indices, old-version cleanup) at the end. The
crash-safety argument for this order is in `actstore.ingest.pipeline`'s docstring.
"""

from __future__ import annotations

import dataclasses
import logging

import polars as pl
import pyarrow as pa

from actstore.store import Store
from actstore.store.runs import other_live_runs
from actstore.ingest.memory import MemoryLimits
from actstore.ingest.steps.jobs import IngestPlan, IngestRequest, Job, JobKeys, PhaseHook, phase
from actstore.ingest.steps.rows import sentence_rows

log = logging.getLogger("actstore.ingest")


def write_job(store: Store, model: str, tables: dict[int, pa.Table], *, vector_dtype: str,
              replace: bool, sentences: pa.Table | None = None,
              on_phase: PhaseHook | None = None, job: Job | None = None) -> int:
    """Write one job: its sentence texts first, then one commit per vector width; returns rows.

    Texts first, so stored activations imply stored texts (see the pipeline's docstring).
    """
    if sentences is not None and sentences.num_rows:
        store.write_sentences(sentences)
    phase(on_phase, "texts", job)
    rows = 0
    for width, table in tables.items():
        rows += store.write_activations(model, width, table, vector_dtype=vector_dtype, replace=replace)
    return rows


def fill_missing_texts(store: Store, source, split: str, keys: JobKeys) -> int:
    """Write the texts of the job's already-stored text items that the `sentences` table lacks.

    Only stores written before texts were committed first can need this; it reads the sentences
    table and (only when some are missing) the source's texts, never the model. Returns the
    texts written.
    """
    job = keys.job
    stored = keys.complete.get("text")
    if not stored:
        return 0
    have = store.sentences([job.lang])
    if have.height:
        have = have.filter((pl.col("source") == source.text_source) & (pl.col("split") == split))
    missing = sorted(set(job.ids) - set(have["sentence_id"].to_list()))
    if not missing:
        return 0
    items = [it for it in source.items(job.lang, "text", sentence_ids=missing) if it.sample_id in stored]
    rows = sentence_rows(source.text_source, split, job.lang, items)
    store.write_sentences(rows)
    return rows.num_rows


class PointRegistration:
    """Registers the plan's points once, when called after the run's first successful write: a
    write that fails (a full disk) must not leave registered points without a table."""

    def __init__(self, store: Store, plan: IngestPlan) -> None:
        self.store, self.plan, self.done = store, plan, False

    def __call__(self) -> None:
        if not self.done:
            plan = self.plan
            self.store.register_points(plan.model, plan.point_rows, random_init=plan.info.random_init)
            self.done = True


def provenance(plan: IngestPlan, request: IngestRequest, limits: MemoryLimits | None = None) -> dict:
    """The `runs` row that opens an ingest (status 'running' until `finish_run`)."""
    info, source = plan.info, plan.source
    return {
        "model": plan.model, "model_id": info.model_id, "model_revision": info.revision,
        "adapter": info.adapter, "random_init": info.random_init, "source": source.name,
        "dataset_revision": source.revision(), "split": request.split, "langs": plan.langs,
        "modalities": list(plan.points_by_mod), "points": [r["point"] for r in plan.point_rows],
        "pooling": "masked mean over valid positions, float32", "dtype": request.dtype,
        "vector_dtype": request.vector_dtype, "device": request.device,
        "batch_size": request.batch_size,
        "params": {"limit": request.limit, "overwrite": request.overwrite,
                   **({"max_seconds": limits.max_seconds, "memory_budget": limits.budget} if limits else {}),
                   "layers": (request.layers if isinstance(request.layers, str)
                              else list(request.layers) if request.layers else None),
                   "data_dir": request.data_dir, "engine": request.engine, **info.extra,
                   "sites": list(request.sites) if request.sites else None,
                   # the decoder's target: the sentence itself, or its parallel in target_lang
                   **({"decoder_target": ("translation" if request.target_lang else "transcription"),
                       "target_lang": request.target_lang}
                      if any(p.startswith("decoder.") for ps in plan.points_by_mod.values() for p in ps)
                      else {}),
                   "corpus": source.corpus(request.split),
                   # the catalogue rows this run used: reports read them, not the installed table
                   "languages": {c: dataclasses.asdict(plan.catalogue.get(c)) for c in plan.langs}},
    }


def finalize(store: Store, model: str, run_id: str, *, wrote: bool, on_phase: PhaseHook | None = None) -> bool:
    """Compact, index and clean up `model`'s tables when this run wrote rows or the store needs
    it; returns True when the old-version cleanup was left for `finish_cleanup`.

    Runs whenever the store needs it, not only when this run wrote rows: an earlier finalize may
    have been killed half-way (missing indices, versions not cleaned up). Old versions are kept
    while another live ingest may still read them.
    """
    if not (wrote or store.finalize_needed(model)):
        return False
    phase(on_phase, "finish", None)
    others = other_live_runs(store, run_id)
    if others:
        log.info("keeping old versions: ingest(s) %s may still read them", ", ".join(others))
    store.finalize_model(model, on_step=None if on_phase is None else (lambda step: on_phase(step, None)),
                         cleanup=not others)
    phase(on_phase, "finalized", None)
    return bool(others)


def finish_cleanup(store: Store, model: str, run_id: str) -> None:
    """The cleanup `finalize` deferred, once no other ingest is live. Called AFTER this run is
    marked finished: concurrent ingests each skip the cleanup while the other is live, so the
    last of them to finish always sees none live and cleans up."""
    if not other_live_runs(store, run_id):
        store.finalize_model(model)
