"""`--engine ray`: encode on Ray Data model actors, write on the driver.

How a run flows (and why):
1. The driver plans every job with the shared steps and reads its pending keys from the store
   once, BEFORE any model runs (`steps.planning.pending_jobs`): a rerun sends nothing.
2. Pending items become dataset rows of *keys*, not payloads: one row = one group of up to
   `GROUP_BATCHES` model batches of one job. Actors read the audio/text themselves, so the
   driver never holds a whole study's audio and reading scales with the actors.
   Text groups are ordered by length like the local engine's batches (longest first), so text
   batches are the same batches and the vectors the same numbers. A paired job (speech+text
   in one forward: SALMONN, Qwen2-Audio) is cut into groups of whole pairs. A decoding job's
   rows also carry its decoder targets (`targets`, aligned with `sentence_ids`, and
   `target_lang`; both empty otherwise), resolved on the driver before any store opens.
3. `map_batches` runs `EncodeActor` (`engines.ray_actor`, importable by every worker) on a
   fixed-size actor pool: `num_gpus=1` per actor with `--device cuda`, otherwise a fraction of a
   CPU that leaves room for Ray Data's own tasks (actors that take every CPU starve them).
   Actors encode with the local engine's `steps.encoding.encode_job` (same batching, same NaN check).
4. Pooled rows stream back to the driver; when a job's last row arrives the job is written with
   the shared steps (`build_job_tables`, `sentence_rows`, `write_job`: the key-guarded merge,
   one commit per job and width). A killed driver loses at most the jobs not yet committed; a
   rerun computes exactly those. Provenance and finish are `pipeline.ingest`'s.

Known traps avoided on purpose (ray 2.60, pylance 14): Ray's `write_lance` fails with current
pylance and lance-ray 0.5.0 has no upsert (and a retry path that can drop rows), so Ray never
writes to the store; workers never open the store either (no stale LanceDB handles across
processes, no forked Lance runtime).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actstore.errors import ActstoreError
from actstore.store import Store
from actstore.ingest.items import Item
from actstore.ingest.engines.ray_actor import EncodeActor
from actstore.ingest.steps.jobs import (Encoded, IngestPlan, IngestRequest, IngestSummary, Job, JobKeys,
                                        PhaseHook, phase)
from actstore.ingest.steps.rows import build_job_tables, sentence_rows
from actstore.ingest.steps.writing import write_job

log = logging.getLogger("actstore.ingest.ray")

#: model batches per dataset row: enough to bucket speech by length inside the actor, small
#: enough that a job's rows spread over every actor
GROUP_BATCHES = 4
#: CPU left free for Ray Data's own tasks when sizing CPU actors
RESERVED_CPUS = 0.5


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ActstoreError("--engine ray needs Ray Data; install it with pip install 'actstore[ray]'.") from None
    return ray


def connect(address: str | None) -> bool:
    """Join `address` (else RAY_ADDRESS), or start a local cluster; True if we started one.

    A process that already called `ray.init` keeps its cluster (tests, notebooks).
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ActstoreError(
                f"Cannot connect to the Ray cluster at {address} ({str(exc).splitlines()[0][:160]}); "
                "check --ray-address / RAY_ADDRESS, or leave both unset to start a local cluster."
            ) from None
        return False
    with warnings.catch_warnings():
        # Ray starts its daemons with fork+exec (subprocess); lancedb warns about any fork, but
        # an exec'd child shares no Lance state. Ray's workers are started by its raylet.
        warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
        ray.init(include_dashboard=False, **kwargs)
    return True


@dataclass
class ActorPlan:
    """How many model actors, and what each reserves."""

    size: int
    num_cpus: float
    num_gpus: float
    device: str


def actor_plan(request: IngestRequest, resources: dict) -> ActorPlan:
    """One actor per GPU with a cuda device; otherwise CPU actors sharing the cluster's CPUs
    (`--ray-actors` was checked with the request: `steps.inputs.check_request`)."""
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    if request.device.startswith("cuda"):
        if gpus == 0:
            raise ActstoreError(
                f"--device {request.device} asks for GPUs but the Ray cluster has none; pass "
                "--device cpu or connect to a cluster with GPUs (--ray-address)."
            )
        size = request.ray_actors or gpus
        # Ray sets CUDA_VISIBLE_DEVICES per actor: its one GPU is cuda:0 inside the actor
        return ActorPlan(size=size, num_cpus=1.0, num_gpus=1.0, device="cuda")
    size = request.ray_actors or 1
    share = (cpus - RESERVED_CPUS) / size
    num_cpus = max(0.25, min(1.0, math.floor(share * 4) / 4))
    return ActorPlan(size=size, num_cpus=num_cpus, num_gpus=0.0, device=request.device)


def _raise_error_rows(out: pa.Table) -> None:
    """Re-raise an actor's ActstoreError on the driver, same class, same sentence."""
    errors = out.column("error").drop_null()
    if len(errors) == 0:
        return
    where, _, message = errors[0].as_py().partition("\t")
    module, _, name = where.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        cls = ActstoreError
    if not (isinstance(cls, type) and issubclass(cls, ActstoreError)):
        cls = ActstoreError
    raise cls(message)


@dataclass
class _Job:
    """A job in flight on the driver: its pending keys and the rows received so far."""

    job: Job
    keys: JobKeys
    rank: dict[str, dict[str, int]]        # modality -> sample id -> write position
    parts: list[pa.Table] = field(default_factory=list)
    received: int = 0

    @property
    def expected(self) -> int:
        return sum(len(self.keys.entries[m]) * len(self.job.points[m]) for m in self.job.modalities)


def _groups(plan: IngestPlan, pending: list[JobKeys], request: IngestRequest, summary: IngestSummary, bar,
            on_phase: PhaseHook | None) -> tuple[dict[int, _Job], list[dict]]:
    """Cut every job's pending keys (read from the store before the run) into dataset rows."""
    jobs: dict[int, _Job] = {}
    rows: list[dict] = []
    group = request.batch_size * GROUP_BATCHES
    for j, keys in enumerate(pending):
        job = keys.job
        phase(on_phase, "filter", job)
        summary.skipped_items += keys.n_skipped
        entries = keys.entries
        if not any(entries.values()):
            bar.update(len(job.ids))
            continue
        if job.modalities == ("text",):  # the local engine's order: longest first, stable
            texts = plan.source.texts(job.lang)
            entries = {"text": sorted(entries["text"], key=lambda e: len(texts.get(e.sentence_id) or ""),
                                      reverse=True)}
            keys = dataclasses.replace(keys, entries=entries)
        jobs[j] = _Job(job=job, keys=keys,
                       rank={m: {e.sample_id: i for i, e in enumerate(es)} for m, es in entries.items()})
        # paired entries are aligned pair by pair (`_pair_up`): equal slices are whole pairs
        n = len(entries[job.modalities[0]])
        for i in range(0, n, group):
            chunk = {m: entries[m][i:i + group] for m in job.modalities}
            ids = sorted({e.sentence_id for es in chunk.values() for e in es})
            row = {"job": j, "lang": job.lang, "modalities": list(job.modalities), "sentence_ids": ids,
                   "speech_ids": [], "text_ids": [], "target_lang": job.target_lang or "",
                   "targets": [(job.targets or {}).get(i, "") for i in ids]}
            row.update({f"{m}_ids": [e.sample_id for e in es] for m, es in chunk.items()})
            rows.append(row)
    return jobs, rows


def _encoded(plan: IngestPlan, flight: _Job) -> Encoded:
    """The actors' rows of one job as `encode_job`'s result, in the driver's planned order."""
    rows = pa.concat_tables(flight.parts)
    flight.parts.clear()
    job = flight.job
    encoded: Encoded = {}
    for modality in job.modalities:
        rank = flight.rank[modality]
        mine = rows.filter(pc.equal(rows.column("modality"), modality))
        if mine.num_rows == 0:
            continue
        vectors = {}
        items: list[Item] = []
        for p in job.points[modality]:
            part = mine.filter(pc.equal(mine.column("point"), p))
            idx = np.argsort([rank[s] for s in part.column("sample_id").to_pylist()], kind="stable")
            part = part.take(pa.array(idx))
            if not items:
                items = [Item(sentence_id=r["sentence_id"], lang=job.lang, modality=modality,
                              sample_id=r["sample_id"], split=r["split"], text=r["text"])
                         for r in part.select(["sample_id", "sentence_id", "split", "text"]).to_pylist()]
            vecs = part.column("vector").combine_chunks().flatten().to_numpy().reshape(part.num_rows, -1)
            vectors[p] = (vecs, part.column("n_frames").to_numpy())
        encoded[modality] = (items, vectors)
    return encoded


def _write(store: Store, plan: IngestPlan, request: IngestRequest, run_id: str, summary: IngestSummary,
           flight: _Job, layer_of: Callable[[str], int | None], register: Callable[[], None] | None) -> None:
    """Write one finished job exactly as `engines.local.run_job` does (one commit per width)."""
    job = flight.job
    encoded = _encoded(plan, flight)
    tables = build_job_tables(plan, encoded, layer_of=layer_of, run_id=run_id,
                              vector_dtype=request.vector_dtype, lang=job.lang)
    texts = encoded.get("text", ([], {}))[0]
    sentences = sentence_rows(plan.source.text_source, request.split, job.lang, texts) if texts else None
    summary.rows += write_job(store, plan.model, tables, vector_dtype=request.vector_dtype,
                              replace=flight.keys.replace, sentences=sentences)
    if register is not None:  # after the first successful write, as in the local engine
        register()
    summary.items += sum(len(v) for v in flight.keys.entries.values())
    summary.jobs += 1


def _results(ds) -> Iterator[pa.Table]:
    for out in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        _raise_error_rows(out)
        yield out


def run_ray(store: Store, plan: IngestPlan, request: IngestRequest, run_id: str, summary: IngestSummary,
            bar, *, pending: list[JobKeys], layer_of: Callable[[str], int | None],
            on_phase: PhaseHook | None = None, register: Callable[[], None] | None = None) -> None:
    """The Ray engine (see the module doc), called by `pipeline.ingest` inside its run record.

    `pending` holds every job's keys, read from the store once before the run.
    `on_phase` gets "filter" per job while grouping, "startup" before Ray starts, "encode" when
    results flow (again after each write) and "write" per job, so the pipeline's clock separates
    Ray's fixed start-up cost (actor start + model load) from encoding.
    """
    ray = _ray()
    jobs, rows = _groups(plan, pending, request, summary, bar, on_phase)
    if not rows:
        return
    phase(on_phase, "startup", None)
    started = connect(request.ray_address)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # our tqdm bar replaces Ray's; its notice that Ray's bars are off is noise
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        actors = actor_plan(request, ray.cluster_resources())
        log.info("ray: %d actor(s) x (%.2f CPU, %.0f GPU), %d groups in %d jobs", actors.size,
                 actors.num_cpus, actors.num_gpus, len(rows), len(jobs))
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            EncodeActor, batch_size=1, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors.size),
            num_cpus=actors.num_cpus, num_gpus=actors.num_gpus or None,
            fn_constructor_kwargs={"request": request, "device": actors.device,
                                   "points_by_mod": plan.points_by_mod},
        )
        first = True
        for out in _results(ds):
            if first:  # until here: actor start + model load (Ray's fixed cost per ingest)
                phase(on_phase, "encode", None)
                first = False
            for j in set(out.column("job").to_pylist()):
                flight = jobs[j]
                part = out.filter(pc.equal(out.column("job"), j))
                flight.parts.append(part)
                flight.received += part.num_rows
                lead = part.filter(pc.equal(part.column("modality"), flight.job.modalities[0]))
                bar.update(len(set(lead.column("sentence_id").to_pylist())))
                if flight.received == flight.expected:
                    phase(on_phase, "write", flight.job)
                    _write(store, plan, request, run_id, summary, flight, layer_of, register)
                    del jobs[j]
                    phase(on_phase, "encode", None)
        if jobs:
            raise ActstoreError(
                f"Ray returned incomplete results for {len(jobs)} job(s); rerun the ingest "
                "(stored jobs are skipped)."
            )
    finally:
        if started:
            ray.shutdown()
