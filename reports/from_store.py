"""Read a model's provenance and stored results into `ReportInputs`, and render them.

Reading only: this module never computes or writes results. `actstore report` first calls
`actstore.analyses.complete.ensure_results` (unless `--no-compute`) and then `build_report`;
a section whose results are not stored says which command fills it.

Language metadata comes from what ingest stored, never from the catalogue shipped with the
installed version: every activation row carries its language's resource level, script and family,
and each run records the catalogue rows it used (`params["languages"]`, for the names). A store
ingested with a user's `--languages` CSV therefore reports that CSV's levels, and a later change of
the shipped table does not rewrite an old study's report.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from actstore import schema
from actstore.published import PublishedTable
from actstore.schema import sql_quote
from actstore.store import Store
from actstore.reports.inputs import ReportInputs
from actstore.reports.render import check_out_path, render_report

#: report frame -> the result table it is read from (names are defined once, in actstore.schema)
RESULT_TABLES = {name: name for name in schema.RESULT_TABLES}


def _stored_names(runs: pl.DataFrame) -> dict[str, str]:
    """Language names from the catalogue rows each run recorded (later runs win)."""
    names: dict[str, str] = {}
    if "params" not in runs.columns:
        return names
    for raw in runs.sort("started_at")["params"].to_list():
        try:
            langs = (json.loads(raw) if raw else {}).get("languages") or {}
        except (ValueError, AttributeError):
            continue
        for code, row in langs.items():
            if isinstance(row, dict) and row.get("name"):
                names[code] = str(row["name"])
    return names


def languages_table(store: Store, model: str) -> pl.DataFrame:
    """Per language: name, resource level, script, family as ingested, and items per modality."""
    scan = store.scan_activations(model, with_vectors=False)
    meta = (scan.group_by("lang")
            .agg(pl.col("resource_level").drop_nulls().first(), pl.col("script").drop_nulls().first(),
                 pl.col("family").drop_nulls().first())
            .collect())
    counts = (scan.group_by("lang", "modality").agg(pl.col("sentence_id").n_unique().alias("n"))
              .collect())
    wide = counts.pivot(on="modality", index="lang", values="n")
    for m in ("speech", "text"):
        if m not in wide.columns:
            wide = wide.with_columns(pl.lit(0, dtype=pl.UInt32).alias(m))
    names = _stored_names(store.runs(model))
    return (meta.join(wide, on="lang", how="left")
            .with_columns(pl.col("lang").replace_strict(names, default="", return_dtype=pl.String).alias("name"),
                          pl.col("speech").fill_null(0).cast(pl.Int64).alias("n_speech"),
                          pl.col("text").fill_null(0).cast(pl.Int64).alias("n_text"),
                          *(pl.col(c).fill_null("") for c in ("resource_level", "script", "family")))
            .select("lang", "name", "resource_level", "script", "family", "n_speech", "n_text")
            .sort("lang"))


def report_provenance(store: Store, model: str) -> dict:
    """Model, store version, runs and per-language counts for the report's first section."""
    runs = store.runs(model).select("run_id", "model", "source", "started_at", "ended_at", "status",
                                    "n_rows", "points", "dtype", "device", "package_version", "params")
    return {
        "model": model, "random_init": store.is_random_init(model), "store_uri": store.uri,
        "store_version": store.activation_version(model), "schema_version": store.schema_version,
        "runs": runs, "languages": languages_table(store, model),
    }


def _stored(store: Store, table: str, model: str) -> pl.DataFrame | None:
    frame = store.read_results(table, f"model = {sql_quote(model)}")
    return None if frame is None or frame.height == 0 else frame


def report_inputs(store: Store, model: str, *, measure: str = "svcca",
                  frames: dict[str, pl.DataFrame | None] | None = None) -> ReportInputs:
    """The report's inputs for `model`: provenance read from the store, and result frames.

    `frames` are the rows each section shows, as `actstore.analyses.report_data.report_frames`
    selects them (per chart cell the latest computation, per depth the widest language set);
    without them the raw stored rows are used (every computation ever saved).
    """
    store.require_model(model)
    if frames is None:
        frames = {field: _stored(store, table, model) for field, table in RESULT_TABLES.items()}
        if frames["similarity"] is not None:  # the measure chosen for the report
            frames["similarity"] = frames["similarity"].filter(pl.col("measure") == measure)
    return ReportInputs(provenance=report_provenance(store, model), measure=measure, **frames)


def build_report(store: Store, model: str, out: str | Path, *, measure: str = "svcca",
                 frames: dict[str, pl.DataFrame | None] | None = None,
                 published: PublishedTable | None = None) -> Path:
    """Write the HTML report of `model` from what the store holds to `out` (atomically); with
    `published` (`actstore.published.beside_ours`) the study's published numbers close the page."""
    check_out_path(out)
    extra = []
    if published is not None:
        from actstore.reports.published import published_section

        extra = [s for s in [published_section(published)] if s is not None]
    return render_report(report_inputs(store, model, measure=measure, frames=frames), out, extra=extra)


def build_comparison_report(store: Store, models: list[str], out: str | Path, *,
                            comparison: dict[str, pl.DataFrame], measure: str = "svcca",
                            frames: dict[str, dict[str, pl.DataFrame | None]] | None = None,
                            findings: dict[str, pl.DataFrame | None] | None = None,
                            published: PublishedTable | None = None) -> Path:
    """Write one HTML page comparing `models` side by side, then each model's own sections.

    `comparison` is `actstore.analyses.comparison.comparison_frames(...)`; `frames` maps each model
    to its `report_frames` (as for `build_report`); `findings`
    (`actstore.analyses.findings.findings_frames`), where it holds a real model, opens the page;
    `published` (`actstore.published.beside_ours`) puts the study's published numbers beside ours.
    """
    from actstore.reports.comparison import ComparisonInputs, render_comparison

    check_out_path(out)
    frames = frames or {}
    inputs = [report_inputs(store, m, measure=measure, frames=frames.get(m)) for m in models]
    return render_comparison(ComparisonInputs(frames=comparison, models=inputs, measure=measure,
                                              findings=findings, published=published), out)
