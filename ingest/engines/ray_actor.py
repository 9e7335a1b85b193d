"""The Ray engine's model actor (`engines.ray_engine` drives it): loads the adapter and the
source once per actor, reads each dataset row's items itself (with the job's decoder targets,
carried in the row, so decoder points run on Ray as locally), encodes them with the local
engine's `encode_job`, and returns one row per (item, point).

Its own module so that every Ray worker can import it by name, and so that the driver's side
(`ray_engine`: grouping, result collection, writing) stays one job per module.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from actstore.errors import ActstoreError
from actstore.ingest.items import Item
from actstore.ingest.memory import parse_size, resolve_limits
from actstore.ingest.steps.encoding import encode_job
from actstore.ingest.steps.jobs import IngestRequest, Job, JobWork
from actstore.ingest.steps.targets import with_targets


#: what an actor returns: one row per (item, point); `error` set only on an error row
RESULT_SCHEMA = pa.schema([
    ("job", pa.int32()), ("modality", pa.string()), ("sample_id", pa.string()), ("sentence_id", pa.int64()),
    ("split", pa.string()), ("text", pa.string()), ("point", pa.string()), ("n_frames", pa.int64()),
    ("vector", pa.list_(pa.float32())), ("error", pa.string()),
])


def error_rows(exc: ActstoreError) -> pa.Table:
    """One row naming the error's class and its sentence (see `EncodeActor.__call__`)."""
    row = {f.name: None for f in RESULT_SCHEMA}
    row.update(job=-1, error=f"{type(exc).__module__}:{type(exc).__qualname__}\t{exc}")
    return pa.Table.from_pylist([row], schema=RESULT_SCHEMA)


def vectors_column(vecs: np.ndarray) -> pa.Array:
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    n, d = vecs.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32)),
                                    pa.array(vecs.reshape(-1)))


class EncodeActor:
    """A model actor: loads the adapter and the source once, then encodes groups of keys.

    Input rows (one per call, `batch_size=1`): job, lang, modalities, sentence_ids and the
    sample ids per modality (`speech_ids`, `text_ids`). Output: one row per (item, point) with
    the item's keys, n_frames and the pooled vector as a float32 list. Errors (bad audio, an
    overflowing layer) end the run on the driver with the same ActstoreError the local engine
    raises.
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
        self.adapter = load_adapter(request.model, adapter=request.adapter, options=request.adapter_options,
                                    name=request.name, device=device, dtype=request.dtype)
        # this actor's own memory (a worker node may have another size than the driver)
        self.budget = resolve_limits(self.adapter, max_seconds=request.max_seconds,
                                     memory_budget=parse_size(request.memory_budget), device=device).budget
        catalogue = Catalogue.load(request.languages_csv)
        self.source = open_source(request.source, catalogue=catalogue, data_dir=request.data_dir,
                                  split=request.split, cache_dir=request.cache_dir)

    def __call__(self, batch: pa.Table) -> pa.Table:
        try:
            outs = [self._group(row) for row in batch.to_pylist()]
        except ActstoreError as exc:
            # Ray Data re-raises a UDF's exception as UserCodeException with the original only
            # in a traceback string; an error row carries the class and sentence to the driver
            return error_rows(exc)
        return pa.concat_tables(outs) if len(outs) > 1 else outs[0]

    def _read(self, lang: str, modality: str, sentence_ids: list[int], sample_ids: list[str]) -> list[Item]:
        wanted = set(sample_ids)
        entries = [e for e in self.source.entries(lang, modality, sentence_ids) if e.sample_id in wanted]
        items = list(self.source.load(lang, modality, entries))
        got = {it.sample_id for it in items}
        if got != wanted:
            raise ActstoreError(
                f"The source returned other items for {lang}/{modality} on a Ray worker than on the "
                f"driver ({len(wanted - got)} missing); give every node the same --data-dir contents."
            )
        return items

    def _group(self, row: dict) -> pa.Table:
        lang, modalities = row["lang"], tuple(row["modalities"])
        job = Job(lang, modalities, row["sentence_ids"], {m: self.points_by_mod[m] for m in modalities})
        if row["target_lang"]:  # a decoding job: its targets travel in the row, aligned with the ids
            job.targets = dict(zip(row["sentence_ids"], row["targets"]))
            job.target_lang = row["target_lang"]
        items = {m: with_targets(job, self._read(lang, m, row["sentence_ids"], row[f"{m}_ids"]))
                 for m in modalities}
        work = JobWork(job=job, items=items, complete={m: set() for m in modalities}, replace=False)
        # the local engine's encoder: same length buckets inside the group, same NaN/inf check
        encoded = encode_job(self.adapter, work, self.request.batch_size, budget=self.budget)
        tables = []
        for modality, (done, vectors) in encoded.items():
            n = len(done)
            for p, (vecs, n_frames) in vectors.items():
                tables.append(pa.table({
                    "job": pa.array([row["job"]] * n, pa.int32()),
                    "modality": [modality] * n,
                    "sample_id": [it.sample_id for it in done],
                    "sentence_id": pa.array([it.sentence_id for it in done], pa.int64()),
                    "split": [it.split for it in done],
                    "text": pa.array([it.text for it in done], pa.string()),
                    "point": [p] * n,
                    "n_frames": pa.array(np.asarray(n_frames, dtype=np.int64)),
                    "vector": vectors_column(vecs),
                    "error": pa.nulls(n, pa.string()),
                }, schema=RESULT_SCHEMA))
        return pa.concat_tables(tables)
