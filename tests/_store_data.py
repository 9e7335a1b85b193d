"""Helpers that write synthetic activation rows into a real store (no model needed)."""

from __future__ import annotations

from actstore.store import Store
from actstore.synthetic import activation_rows


def put(store: Store, model: str, point: str, modality: str, lang: str, sentence_ids, vectors,
        *, layer: int | None = 1, replace: bool = False, **kw) -> None:
    store.register_points(model, [{"point": point, "modality": modality, "layer": layer,
                                   "width": vectors.shape[1], "vector_dtype": "float32"}])
    store.write_activations(model, vectors.shape[1],
                            activation_rows(model, point, modality, lang, sentence_ids, vectors,
                                            layer=layer, **kw), replace=replace)
