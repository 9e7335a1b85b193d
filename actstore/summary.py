"""What a store holds (per model: points, languages, rows; runs and result tables) and the catalogue."""

from __future__ import annotations

import dataclasses

import polars as pl

from actstore.catalogue import Catalogue
from actstore.store import Store


def languages_frame(languages_csv: str | None = None) -> pl.DataFrame:
    """The language catalogue (shipped rows, overlaid by `languages_csv`) as one row per language."""
    return pl.DataFrame([dataclasses.asdict(lang) for lang in Catalogue.load(languages_csv)])


def model_summary(store: Store) -> pl.DataFrame:
    """One row per (model, modality): points, layers, languages, sentences, rows, width."""
    pts = store.points()
    if pts.height == 0:
        return pl.DataFrame()
    counts = (
        store.scan_activations(with_vectors=False)
        .group_by("model", "modality")
        .agg(
            pl.col("lang").n_unique().alias("languages"),
            pl.col("sentence_id").n_unique().alias("sentence_ids"),
            pl.len().alias("rows"),
        )
        .collect()
    )
    shape = pts.group_by("model", "modality").agg(
        pl.len().alias("points"),
        pl.col("width").unique().sort().cast(pl.String).str.join("/").alias("width"),
        pl.col("point").sort_by(pl.col("layer").fill_null(10_000)).first().alias("first_point"),
        pl.col("point").sort_by(pl.col("layer").fill_null(-1)).last().alias("last_point"),
    )
    # the runs table is the source of random_init (actstore/store/runs.py), not the points' copy
    random = {m: store.is_random_init(m) for m in pts["model"].unique().to_list()}
    shape = shape.with_columns(pl.col("model").replace_strict(random, return_dtype=pl.Boolean).alias("random_init"))
    return (shape.join(counts, on=["model", "modality"], how="left")
            .sort("model", "modality")
            .select("model", "random_init", "modality", "points", "first_point", "last_point",
                    "width", "languages", "sentence_ids", "rows"))


def describe(store: Store) -> str:
    """A human-readable report of the store for `actstore info`."""
    lines = [f"store: {store.uri} (schema version {store.schema_version})"]
    summary = model_summary(store)
    if summary.height == 0:
        lines.append("no activations stored yet: run `actstore ingest`.")
    else:
        with pl.Config(tbl_rows=100, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
            lines.append(str(summary))
        for model in summary.filter(pl.col("random_init"))["model"].unique().to_list():
            lines.append(f"note: {model} is a RANDOM-INIT model: its numbers check the pipeline, they are not findings.")
    runs = store.runs()
    if runs.height:
        by_status = runs.group_by("status").len().sort("status")
        lines.append("runs: " + ", ".join(f"{r['len']} {r['status']}" for r in by_status.iter_rows(named=True)))
    results = store.result_tables()
    if results:
        lines.append("result tables: " + ", ".join(results))
    return "\n".join(lines)
