"""A store with realistic contents for the SQL conformance suite and the query benchmarks.

Every table (activations of three models, float32 and float16 vectors, runs, points, sentences,
two result tables), with nulls where the schema allows them, written through the real Store API.
`reference_tables` reads the same tables into memory as plain Arrow tables for DuckDB, the
outside reference (float16 cast to float32: DuckDB has no half-precision type).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from actstore.store import Store, numpy_to_vectors

from _store_data import activation_rows

LANGS = {"eng": ("high", "Latin", "Indo-European"), "fra": ("high", "Latin", "Indo-European"),
         "swh": ("low", "Latin", "Atlantic-Congo"), "zho": (None, "Hans", None)}


def _write(store: Store, model: str, point: str, modality: str, layer, width: int, dtype: str,
           lang: str, ids, rng, run_id: str) -> None:
    store.register_points(model, [{"point": point, "modality": modality, "layer": layer,
                                   "width": width, "vector_dtype": dtype}])
    level, script, family = LANGS[lang]
    rows = activation_rows(model, point, modality, lang, list(ids), np.zeros((len(ids), width)),
                           layer=layer, run_id=run_id, resource_level=level, script=script, family=family,
                           n_frames=3 if modality == "text" else 40)
    vectors = numpy_to_vectors(rng.standard_normal((len(ids), width)).astype(np.float32), dtype)
    rows = rows.set_column(rows.schema.get_field_index("vector"), "vector", vectors)
    store.write_activations(model, width, rows, vector_dtype=dtype, replace=False)


def build_sql_store(path: Path) -> Store:
    """Write the conformance store at `path` (a few seconds) and return it."""
    store = Store.open(path)
    rng = np.random.default_rng(14)
    layout = [("alpha", "text.L1", "text", 1, 4, "float32"), ("alpha", "text.L2", "text", 2, 4, "float32"),
              ("alpha", "speech.L1", "speech", 1, 4, "float32"), ("beta", "text.pooled", "text", None, 6, "float16"),
              ("gamma", "speech.enc", "speech", 3, 3, "float32")]
    for i, (model, point, modality, layer, width, dtype) in enumerate(layout):
        for j, lang in enumerate(LANGS):
            ids = range(1 + j, 9 + j - i % 2) if not (model == "gamma" and lang == "zho") else []
            if ids:
                _write(store, model, point, modality, layer, width, dtype, lang, ids, rng, f"run-{model}")
    for model, status in (("alpha", "done"), ("beta", "failed"), ("gamma", "running")):
        run_id = store.start_run({"run_id": f"run-{model}", "model": model, "source": "flores200",
                                  "split": "devtest", "langs": list(LANGS), "modalities": ["text"],
                                  "points": None, "params": {"k": 1} if model != "gamma" else None})
        if status != "running":
            store.finish_run(run_id, status=status, n_items=10, n_rows=40 if status == "done" else 0)
    texts = [{"source": "flores200", "split": "devtest", "lang": lang, "sentence_id": i,
              "text": None if (i == 3 and lang == "zho") else f"{lang} sentence {i}%_x"}
             for lang in LANGS for i in range(1, 12)]
    store.write_sentences(pa.Table.from_pylist(texts))
    sim = pl.DataFrame({
        "model": ["alpha"] * 6 + ["beta"] * 3, "point": ["text.L1", "text.L2", "speech.L1"] * 3,
        "lang_a": ["eng", "eng", "fra", "eng", "fra", "swh", "eng", "fra", "zho"],
        "lang_b": ["fra", "swh", "swh", "zho", "zho", "zho", "fra", "swh", "eng"],
        "score": [0.5, 0.25, None, 0.75, 0.125, 0.0625, 0.3, 0.9, None], "n": [8, 7, 7, 8, 6, 6, 8, 7, 7],
    }, schema_overrides={"n": pl.Int64})
    store.write_results("similarity", sim, key=["model", "point", "lang_a", "lang_b"])
    top = pl.DataFrame({"model": ["alpha", "alpha", "gamma"], "point": ["text.L1", "text.L2", "speech.enc"],
                        "neurons": [[3, 1, 0], [2], None], "weights": [[0.5, 0.25, 0.125], [1.0], None]})
    store.write_results("neurons_top", top, key=["model", "point"])
    return store


def _readable(table: pa.Table) -> pa.Table:
    fields = []
    for f in table.schema:
        t = f.type
        if (pa.types.is_fixed_size_list(t) or pa.types.is_list(t)) and pa.types.is_float16(t.value_type):
            t = pa.list_(pa.float32(), t.list_size) if pa.types.is_fixed_size_list(t) else pa.list_(pa.float32())
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))


def reference_tables(store: Store) -> dict[str, pa.Table]:
    """Every table SQL sees, in memory (activations: the union, vector as list<float32>)."""
    out = {}
    parts = []
    for table_name in store.points()["table_name"].unique().sort().to_list():
        t = _readable(store.dataset(table_name).to_table())
        i = t.schema.get_field_index("vector")
        parts.append(t.set_column(i, "vector", t.column("vector").cast(pa.list_(pa.float32()))))
    schema = pa.schema([pa.field(f.name, f.type) for f in parts[0].schema])
    out["activations"] = pa.concat_tables([p.cast(schema) for p in parts])
    for name in ("runs", "points", "sentences", *store.result_tables()):
        out[name] = _readable(store.dataset(name).to_table())
    return out
