"""Synthetic activation rows for tests and benchmarks: real store writes without a model.

Lives with the tests (the benchmarks import it from here): it is a fixture, not library API.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from actstore.schema import METADATA_FIELDS
from actstore.store import Store, numpy_to_vectors


def activation_rows(model: str, point: str, modality: str, lang: str, sentence_ids: Sequence[int],
                    vectors: np.ndarray, *, layer: int | None = 1, run_id: str = "synthetic",
                    sample_suffix: str = "", split: str = "devtest", resource_level: str | None = "high",
                    script: str | None = "Latin", family: str | None = "Indo-European",
                    n_frames: int = 5, corpus: str = "flores200:devtest") -> pa.Table:
    """Rows of one (model, point, modality, lang): sample ids are `{lang}:{modality}:{id}{suffix}`."""
    n = len(sentence_ids)
    cols = {
        "model": [model] * n, "point": [point] * n, "layer": pa.array([layer] * n, pa.int32()),
        "modality": [modality] * n, "lang": [lang] * n,
        "sentence_id": pa.array([int(s) for s in sentence_ids], pa.int64()),
        "corpus": [corpus] * n,
        "sample_id": [f"{lang}:{modality}:{s}{sample_suffix}" for s in sentence_ids],
        "split": [split] * n, "n_frames": pa.array([n_frames] * n, pa.int32()),
        "resource_level": [resource_level] * n, "script": [script] * n, "family": [family] * n,
        "run_id": [run_id] * n,
    }
    names = [f.name for f in METADATA_FIELDS]
    return pa.table({**{k: cols[k] for k in names}, "vector": numpy_to_vectors(vectors)})


def put(store: Store, model: str, point: str, modality: str, lang: str, sentence_ids, vectors,
        *, layer: int | None = 1, replace: bool = False, **kw) -> None:
    store.register_points(model, [{"point": point, "modality": modality, "layer": layer,
                                   "width": vectors.shape[1], "vector_dtype": "float32"}])
    store.write_activations(model, vectors.shape[1],
                            activation_rows(model, point, modality, lang, sentence_ids, vectors,
                                            layer=layer, **kw), replace=replace)
