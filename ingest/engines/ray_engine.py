"""`--engine ray`: encode on Ray Data model actors, write on the driver.

How a run flows (and why):
1. The driver plans every job (lang, modality) and filters its keys against the store BEFORE any
   model runs, with the local engine's code (`pipeline.pending_keys`): a rerun sends nothing.
2. Pending items become dataset rows of *keys*, not payloads: one row = one group of up to
   `GROUP_BATCHES` model batches of one job. Actors read the audio/text themselves, so the
   driver never holds a whole study's audio and reading scales with the actors.
   Text groups are ordered by length like the local engine's batches (longest first), so text
   batches are the same batches and the vectors the same numbers.
3. `map_batches` runs `EncodeActor` (a class in this package, importable by every worker) on a
   fixed-size actor pool: `num_gpus=1` per actor with `--device cuda`, otherwise a fraction of a
   CPU that leaves room for Ray Data's own tasks (actors that take every CPU starve them).
4. Pooled rows stream back to the driver; when a job's last row arrives the job is written with
   the local engine's key-guarded write (`pipeline.write_job`): one commit per job and width.
   A killed driver loses at most the jobs not yet committed; a rerun computes exactly those.

Known traps avoided on purpose (ray 2.60, pylance 14): Ray's `write_lance` fails with current
pylance and lance-ray 0.5.0 has no upsert (and a retry path that can drop rows), so Ray never
writes to the store; workers never open the store either (no stale LanceDB handles across
processes, no forked Lance runtime).
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actstore.errors import ActstoreError
from actstore.ingest.items import Item
from actstore.ingest.pipeline import IngestRequest, IngestSummary, Pending, Prepared, pending_keys, write_job
from actstore.store import Store

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
    """One actor per GPU with a cuda device; otherwise CPU actors sharing the cluster's CPUs."""
    if request.ray_actors is not None and request.ray_actors < 1:
        raise ActstoreError("--ray-actors must be at least 1.")
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


#: what an actor returns: one row per (item, point); `error` set only on an error row
RESULT_SCHEMA = pa.schema([
    ("job", pa.int32()), ("sample_id", pa.string()), ("sentence_id", pa.int64()), ("split", pa.string()),
    ("text", pa.string()), ("point", pa.string()), ("n_frames", pa.int64()),
    ("vector", pa.list_(pa.float32())), ("error", pa.string()),
])


def _error_rows(exc: ActstoreError) -> pa.Table:
    """One row naming the error's class and its sentence (see `EncodeActor.__call__`)."""
    row = {f.name: None for f in RESULT_SCHEMA}
    row.update(job=-1, error=f"{type(exc).__module__}:{type(exc).__qualname__}\t{exc}")
    return pa.Table.from_pylist([row], schema=RESULT_SCHEMA)


class EncodeActor:
    """A model actor: loads the adapter and the source once, then encodes groups of keys.

    Input rows (one per call, `batch_size=1`): job, lang, modality, sentence_ids, sample_ids.
    Output: one row per (item, point) with the item's keys, n_frames and the pooled vector as a
    float32 list. Exceptions (bad audio, an overflowing layer) end the run on the driver with
    the same ActstoreError the local engine raises.
    """

    def __init__(self, request: IngestRequest, device: str, points_by_mod: dict[str, list[str]]):
        import torch

        from actstore.catalogue import Catalogue
        from actstore.ingest.adapters import load_adapter
        from actstore.ingest.sources import open_source

        # Ray sets OMP_NUM_THREADS for the actor's CPU share; torch must follow it
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        self.request = request
        self.points_by_mod = points_by_mod
        self.adapter = load_adapter(request.model, adapter=request.adapter, name=request.name,
                                    device=device, dtype=request.dtype)
        catalogue = Catalogue.load(request.languages_csv)
        self.source = open_source(request.source, catalogue=catalogue, data_dir=request.data_dir,
                                  split=request.split, cache_dir=request.cache_dir)

    def __call__(self, batch: pa.Table) -> pa.Table:
        try:
            outs = [self._group(row) for row in batch.to_pylist()]
        except ActstoreError as exc:
            # Ray Data re-raises a UDF's exception as UserCodeException with the original only
            # in a traceback string; an error row carries the class and sentence to the driver
            return _error_rows(exc)
        return pa.concat_tables(outs) if len(outs) > 1 else outs[0]

    def _read(self, lang: str, modality: str, sentence_ids: list[int], sample_ids: list[str]) -> list[Item]:
        wanted = set(sample_ids)
        others = [e.sample_id for e in self.source.entries(lang, modality, sentence_ids)
                  if e.sample_id not in wanted]
        items = list(self.source.items(lang, modality, sentence_ids=sentence_ids,
                                       skip_sample_ids=frozenset(others)))
        got = {it.sample_id for it in items}
        if got != wanted:
            raise ActstoreError(
                f"The source returned other items for {lang}/{modality} on a Ray worker than on the "
                f"driver ({len(wanted - got)} missing); give every node the same --data-dir contents."
            )
        return items

    def _group(self, row: dict) -> pa.Table:
        lang, modality = row["lang"], row["modality"]
        points = self.points_by_mod[modality]
        items = self._read(lang, modality, row["sentence_ids"], row["sample_ids"])
        items.sort(key=lambda it: it.length, reverse=True)  # stable: same batches as the local engine
        bs = self.request.batch_size
        tables = []
        for i in range(0, len(items), bs):
            batch = items[i:i + bs]
            out = self.adapter.encode(batch, points)
            n = len(batch)
            for p in points:
                vecs = np.ascontiguousarray(out[p].vectors, dtype=np.float32)
                tables.append(pa.table({
                    "job": pa.array([row["job"]] * n, pa.int32()),
                    "sample_id": [it.sample_id for it in batch],
                    "sentence_id": pa.array([it.sentence_id for it in batch], pa.int64()),
                    "split": [it.split for it in batch],
                    "text": pa.array([it.text for it in batch], pa.string()),
                    "point": [p] * n,
                    "n_frames": pa.array(np.asarray(out[p].n_frames, dtype=np.int64)),
                    "vector": pa.ListArray.from_arrays(
                        pa.array(np.arange(0, (n + 1) * vecs.shape[1], vecs.shape[1], dtype=np.int32)),
                        pa.array(vecs.reshape(-1))),
                    "error": pa.nulls(n, pa.string()),
                }, schema=RESULT_SCHEMA))
        return pa.concat_tables(tables)


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
    """A job in flight on the driver: its plan and the rows received so far."""

    lang: str
    modality: str
    points: list[str]
    order: list[str]                       # sample ids in write order
    pending: Pending
    parts: list[pa.Table] = field(default_factory=list)
    received: int = 0

    @property
    def expected(self) -> int:
        return len(self.order) * len(self.points)


def _groups(prep: Prepared, store: Store, request: IngestRequest,
            plan: list[tuple[str, str, list[int]]], summary: IngestSummary, bar) -> tuple[dict[int, _Job], list[dict]]:
    """Filter every job against the store and cut its pending items into dataset rows."""
    jobs: dict[int, _Job] = {}
    rows: list[dict] = []
    group = request.batch_size * GROUP_BATCHES
    t0 = time.perf_counter()
    for j, (lang, modality, ids) in enumerate(plan):
        points = prep.points_by_mod[modality]
        pend = pending_keys(store, prep.model, lang, modality, points, overwrite=request.overwrite)
        entries = prep.source.entries(lang, modality, ids, pend.skip)
        if not request.overwrite:
            summary.skipped_items += len(pend.complete)
        if not entries:
            bar.update(len(ids))
            continue
        if modality == "text":  # the local engine's order: longest first, stable
            texts = prep.source.texts(lang)
            entries = sorted(entries, key=lambda e: len(texts.get(e.sentence_id) or ""), reverse=True)
        jobs[j] = _Job(lang=lang, modality=modality, points=points,
                       order=[e.sample_id for e in entries], pending=pend)
        for i in range(0, len(entries), group):
            chunk = entries[i:i + group]
            rows.append({"job": j, "lang": lang, "modality": modality,
                         "sentence_ids": sorted({e.sentence_id for e in chunk}),
                         "sample_ids": [e.sample_id for e in chunk]})
    summary.seconds["source"] += time.perf_counter() - t0
    return jobs, rows


def _finish_job(store: Store, request: IngestRequest, prep: Prepared, run_id: str,
                summary: IngestSummary, job: _Job) -> None:
    rows = pa.concat_tables(job.parts)
    job.parts.clear()
    rank = {s: i for i, s in enumerate(job.order)}
    first = rows.filter(pc.equal(rows.column("point"), job.points[0]))
    meta = sorted(first.select(["sample_id", "sentence_id", "split", "text"]).to_pylist(),
                  key=lambda r: rank[r["sample_id"]])
    items = [Item(sentence_id=r["sentence_id"], lang=job.lang, modality=job.modality,
                  sample_id=r["sample_id"], split=r["split"], text=r["text"]) for r in meta]
    point_vectors = {}
    for p in job.points:
        part = rows.filter(pc.equal(rows.column("point"), p))
        idx = np.argsort([rank[s] for s in part.column("sample_id").to_pylist()], kind="stable")
        part = part.take(pa.array(idx))
        width = prep.adapter.width(p)
        vecs = part.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, width)
        point_vectors[p] = (vecs, part.column("n_frames").to_numpy())
    t = time.perf_counter()
    write_job(store, request, prep, run_id, summary, items, point_vectors, job.pending)
    summary.seconds["write"] += time.perf_counter() - t


def _results(ds) -> Iterator[pa.Table]:
    for out in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        _raise_error_rows(out)
        yield out


def run_ray(store: Store, request: IngestRequest, prep: Prepared, run_id: str,
            plan: list[tuple[str, str, list[int]]], summary: IngestSummary, bar) -> None:
    """The Ray engine (see the module doc); same arguments as `pipeline.run_local`."""
    ray = _ray()
    jobs, rows = _groups(prep, store, request, plan, summary, bar)
    if not rows:
        return
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
                                   "points_by_mod": prep.points_by_mod},
        )
        t1 = time.perf_counter()
        first = True
        for out in _results(ds):
            # until the first result: actor start + model load (Ray's fixed cost per ingest)
            key = "startup" if first else "encode"
            summary.seconds[key] = summary.seconds.get(key, 0.0) + time.perf_counter() - t1
            first = False
            for j in set(out.column("job").to_pylist()):
                job = jobs[j]
                part = out.filter(pc.equal(out.column("job"), j))
                job.parts.append(part)
                job.received += part.num_rows
                bar.update(len(set(part.column("sentence_id").to_pylist())))
                if job.received == job.expected:
                    _finish_job(store, request, prep, run_id, summary, job)
                    del jobs[j]
            t1 = time.perf_counter()
        if jobs:
            raise ActstoreError(
                f"Ray returned incomplete results for {len(jobs)} job(s); rerun the ingest "
                "(stored jobs are skipped)."
            )
    finally:
        if started:
            ray.shutdown()
