"""Row building: a job's pooled vectors -> Arrow rows in the activation schema, one table per
vector width (each width is its own table, written in one commit), and its sentence-text rows.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from actstore.schema import METADATA_FIELDS
from actstore.store import numpy_to_vectors
from actstore.ingest.items import Item
from actstore.ingest.steps.jobs import Encoded, IngestPlan


def job_rows(items: list[Item], point_vectors: dict[str, tuple[np.ndarray, np.ndarray]], *,
             model: str, layer_of: Callable[[str], int | None], lang_meta, run_id: str,
             vector_dtype: str, corpus_of: Callable[[str], str]) -> dict[int, pa.Table]:
    """Arrow rows of one modality of a job, grouped by vector width (one table per width)."""
    by_width: dict[int, list[pa.Table]] = {}
    n = len(items)
    base = {
        "model": pa.array([model] * n),
        "modality": pa.array([it.modality for it in items]),
        "lang": pa.array([it.lang for it in items]),
        "sentence_id": pa.array([it.sentence_id for it in items], pa.int64()),
        "corpus": pa.array([corpus_of(it.split) for it in items], pa.string()),
        "sample_id": pa.array([it.sample_id for it in items]),
        "split": pa.array([it.split for it in items]),
        "resource_level": pa.array([lang_meta.resource_level or None] * n, pa.string()),
        "script": pa.array([lang_meta.script or None] * n, pa.string()),
        "family": pa.array([lang_meta.family or None] * n, pa.string()),
        "run_id": pa.array([run_id] * n),
    }
    for point, (vectors, n_frames) in point_vectors.items():
        cols = dict(base)
        cols["point"] = pa.array([point] * n)
        layer = layer_of(point)
        cols["layer"] = pa.array([layer] * n, pa.int32())
        cols["n_frames"] = pa.array(n_frames.astype(np.int32), pa.int32())
        cols["vector"] = numpy_to_vectors(vectors, vector_dtype)
        names = [f.name for f in METADATA_FIELDS] + ["vector"]
        by_width.setdefault(vectors.shape[1], []).append(pa.table({k: cols[k] for k in names}))
    return {w: pa.concat_tables(ts) for w, ts in by_width.items()}


def build_job_tables(plan: IngestPlan, encoded: Encoded, *, layer_of: Callable[[str], int | None],
                     run_id: str, vector_dtype: str, lang: str) -> dict[int, pa.Table]:
    """Every modality's rows of one job, merged per width (so one commit per width)."""
    by_width: dict[int, list[pa.Table]] = {}
    for _modality, (items, vectors) in encoded.items():
        tables = job_rows(items, vectors, model=plan.model, layer_of=layer_of,
                          lang_meta=plan.catalogue.get(lang), run_id=run_id, vector_dtype=vector_dtype,
                          corpus_of=plan.source.corpus)
        for width, table in tables.items():
            by_width.setdefault(width, []).append(table)
    return {w: pa.concat_tables(ts) for w, ts in by_width.items()}


def sentence_rows(source_name: str, split: str, lang: str, items: Sequence[Item]) -> pa.Table:
    """The texts of a job's text items, for the `sentences` table."""
    texts = {it.sentence_id: it.text for it in items if it.text}
    return pa.table({
        "source": [source_name] * len(texts), "split": [split] * len(texts),
        "lang": [lang] * len(texts), "sentence_id": list(texts), "text": list(texts.values()),
    })
