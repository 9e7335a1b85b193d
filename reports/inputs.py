"""What a report is drawn from: provenance plus one Polars frame per analysis, checked at the door.

The analyses hand the report plain Polars frames with fixed columns (listed in `COLUMNS`). The
report never reads the store itself, so it can be rendered from any source of such frames (the
store, a cache, synthetic test data). Checking columns here, once, keeps chart code free of
defensive branches and gives the user one sentence naming the frame and the missing columns.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import polars as pl

from actstore.errors import ReportError



#: Columns each analysis frame must carry (extra columns are ignored).
COLUMNS: dict[str, tuple[str, ...]] = {
    "similarity": (
        "model", "measure", "kind", "point", "depth", "point_order", "lang_a", "lang_b",
        "modality_a", "modality_b", "resource_level_a", "n", "kx", "ky", "score", "baseline",
        "null", "ci_low", "ci_high",
    ),
    "retrieval": (
        "model", "point", "depth", "point_order", "kind", "lang_a", "lang_b", "direction", "n",
        "p_at_1", "recall_at_5", "recall_at_10", "xsim_error",
    ),
    "tsne": (
        "model", "depth", "point_order", "modality", "lang", "sentence_id", "x", "y", "text",
        "kl_divergence",
    ),
    "neurons_top": (
        "model", "depth", "point_order", "target_kind", "target", "modality", "dim", "ap", "rank",
    ),
    "neurons_overlap": ("model", "depth", "lang", "k", "shared"),
    "concentration": ("model", "depth", "point_order", "lang", "modality", "gini"),
    # the neuron study over sites (issue 16): analyses.study_frames.neuron_study_frames
    "site_top": ("model", "depth", "stack", "layer", "site_type", "target_kind", "target", "within",
                 "direction", "rank", "neuron", "ap", "prior"),
    "site_spread": ("model", "depth", "stack", "layer", "site_type", "target_kind", "target", "within",
                    "direction", "n_top", "expected", "global_k"),
    "site_overlap": ("model", "depth", "stack", "layer", "site_type", "lang", "direction", "k", "shared",
                     "expected_by_chance"),
    "site_concentration": ("model", "depth", "stack", "layer", "site_type", "lang", "modality", "script", "n",
                           "gini", "gini_lo", "gini_hi", "top_share", "top_share_lo", "top_share_hi"),
    "probe": ("model", "depth", "layer", "modality", "accuracy", "ci_lo", "ci_hi", "chance", "n"),
    "interventions": ("model", "site", "neuron_set", "seed", "value", "lang", "modality", "k",
                      "n_sentences", "delta_per_token"),
}

PROVENANCE_KEYS = ("model", "random_init", "store_uri", "store_version", "schema_version")
RUNS_COLUMNS = ("run_id", "source", "started_at", "ended_at", "status", "n_rows", "dtype", "device")
LANGUAGES_COLUMNS = ("lang", "name", "resource_level", "n_speech", "n_text")


@dataclass(frozen=True)
class ReportInputs:
    """Everything one report shows; every analysis frame is optional (None = not computed yet).

    `provenance` is a dict with model, random_init, store_uri, store_version, schema_version,
    runs (DataFrame) and languages (DataFrame); see `COLUMNS` for the analysis frames.
    The `site_*`, `probe` and `interventions` frames are the neuron study's (a section each, drawn
    only where given). `measure` picks the similarity measure drawn in the per-language and cross-lingual charts
    (the cross-modal line chart offers every measure present).
    """

    provenance: dict[str, Any]
    similarity: pl.DataFrame | None = None
    retrieval: pl.DataFrame | None = None
    tsne: pl.DataFrame | None = None
    neurons_top: pl.DataFrame | None = None
    neurons_overlap: pl.DataFrame | None = None
    concentration: pl.DataFrame | None = None
    site_top: pl.DataFrame | None = None
    site_spread: pl.DataFrame | None = None
    site_overlap: pl.DataFrame | None = None
    site_concentration: pl.DataFrame | None = None
    probe: pl.DataFrame | None = None
    interventions: pl.DataFrame | None = None
    measure: str = "svcca"

    @property
    def model(self) -> str:
        return str(self.provenance["model"])


def _with_depth(frame: pl.DataFrame) -> pl.DataFrame:
    """Derive `depth` from `point` ("speech.L4" -> "L4") when an older analysis omitted it."""
    if "depth" in frame.columns or "point" not in frame.columns:
        return frame
    return frame.with_columns(
        pl.col("point").str.splitn(".", 2).struct.field("field_1").fill_null(pl.col("point"))
        .alias("depth")
    )


def _check_frame(name: str, frame: Any) -> pl.DataFrame:
    if not isinstance(frame, pl.DataFrame):
        raise ReportError(
            f"Report input {name!r} is a {type(frame).__name__}; pass a polars DataFrame or None."
        )
    frame = _with_depth(frame)
    missing = [c for c in COLUMNS[name] if c not in frame.columns]
    if missing:
        raise ReportError(
            f"Report input {name!r} lacks columns {', '.join(missing)}; "
            f"produce it with the matching `actstore analyze` command."
        )
    return frame


def _check_provenance(provenance: Any) -> dict[str, Any]:
    if not isinstance(provenance, dict):
        raise ReportError("Report provenance must be a dict with model, random_init and store fields.")
    missing = [k for k in PROVENANCE_KEYS if k not in provenance]
    if missing:
        raise ReportError(
            f"Report provenance lacks {', '.join(missing)}; build it with the store's provenance helper."
        )
    out = dict(provenance)
    for key, columns in (("runs", RUNS_COLUMNS), ("languages", LANGUAGES_COLUMNS)):
        frame = out.get(key)
        if frame is None:
            continue
        if not isinstance(frame, pl.DataFrame):
            raise ReportError(f"Report provenance {key!r} must be a polars DataFrame or None.")
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ReportError(
                f"Report provenance {key!r} lacks columns {', '.join(absent)}; "
                f"read it from the store's {key} table."
            )
    return out


def validated(inputs: ReportInputs) -> ReportInputs:
    """Return `inputs` with columns checked, `depth` derived where absent, rows of other models dropped.

    A frame that holds nothing for this model becomes None, so the section shows its fill command.
    """
    if not isinstance(inputs, ReportInputs):
        raise ReportError(f"render_report needs a ReportInputs, not a {type(inputs).__name__}.")
    provenance = _check_provenance(inputs.provenance)
    model = str(provenance["model"])
    changes: dict[str, Any] = {"provenance": provenance}
    for field in fields(ReportInputs):
        if field.name not in COLUMNS:
            continue
        frame = getattr(inputs, field.name)
        if frame is None:
            continue
        frame = _check_frame(field.name, frame).filter(pl.col("model") == model)
        if field.name == "similarity" and "forced" not in frame.columns:
            # saved before the analyses counted forced correlations: unknown, not zero
            frame = frame.with_columns(pl.lit(None, pl.Int32).alias("forced"))
        changes[field.name] = frame if frame.height else None
    return replace(inputs, **changes)
