"""Encoding one job: its forwards in length-bucketed batches, pooled vectors per point.

Pooling (a masked mean in float32) happens inside the adapter; this module collects each
batch's pooled vectors in encoded order and refuses NaN/inf before anything is written.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from actstore.errors import ActstoreError
from actstore.ingest.adapters.base import Adapter
from actstore.ingest.items import Item
from actstore.ingest.memory import BatchCost
from actstore.ingest.steps.batching import batch_groups
from actstore.ingest.steps.jobs import Encoded, JobWork

def encode_job(adapter: Adapter, work: JobWork, batch_size: int,
               on_batch: Callable[[int], object] | None = None, budget: int | None = None) -> Encoded:
    """modality -> (items in encoded order, point -> (vectors (n, d) float32, n_frames (n,))).

    Unpaired jobs call `adapter.encode` per batch; paired jobs call `adapter.encode_pairs` with
    each batch's speech and text items of the same sentences. `on_batch(n)` gets the sentence
    ids each batch covered (progress). With a `budget` (bytes), batches are also cut so that each
    one's estimated activation memory (`adapter.cost_model`) stays under it.
    """
    job = work.job
    pooled: dict[str, dict[str, list[np.ndarray]]] = {m: {p: [] for p in job.points[m]} for m in job.modalities}
    frames: dict[str, dict[str, list[np.ndarray]]] = {m: {p: [] for p in job.points[m]} for m in job.modalities}
    order: dict[str, list[Item]] = {m: [] for m in job.modalities}
    for groups in batch_groups(work, batch_size, BatchCost(adapter) if budget else None, budget):
        if len(job.modalities) > 1:
            out = adapter.encode_pairs(groups["speech"], groups["text"], job.all_points)
        else:
            (modality, batch), = groups.items()
            out = adapter.encode(batch, job.points[modality])
        for modality, batch in groups.items():
            for p in job.points[modality]:
                pooled[modality][p].append(out[p].vectors)
                frames[modality][p].append(out[p].n_frames)
            order[modality].extend(batch)
        if on_batch is not None:
            first = next(iter(groups.values()))
            on_batch(len({it.sentence_id for it in first}))
    result: Encoded = {}
    for modality in job.modalities:
        if not order[modality]:
            continue
        vectors = {}
        for p in job.points[modality]:
            vecs = np.concatenate(pooled[modality][p])
            _check_finite(vecs, p, job.lang, modality)
            vectors[p] = (vecs, np.concatenate(frames[modality][p]))
        result[modality] = (order[modality], vectors)
    return result


def _check_finite(vectors: np.ndarray, point: str, lang: str, modality: str) -> None:
    if not np.isfinite(vectors).all():
        raise ActstoreError(
            f"The model produced NaN/inf at {point} for {lang} {modality}; try --dtype float32 "
            "(float16 overflows in some layers)."
        )
