"""One page comparing several models, as the study does, followed by each model's own sections.

The comparison section draws the frames `actstore.analyses.comparison.comparison_frames` prepares
(final-layer cross-modal score per resource level, final cross-lingual speech-speech vs text-text,
cross-modal curves over depth); then every model's six sections follow, built by the same code as
a single-model report. Those sections name fixed element ids and datasets (`fig-cm-lines`,
`cm_summary`, ...), so each model's copy is renamed with a prefix (`m2-fig-cm-lines`,
`m2_cm_summary`) in the ids, the dataset names and the chart specs: nothing a single-model report
draws had to change.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from actstore.kinds import SYMMETRIC_KINDS
from actstore.published import PublishedTable
from actstore.reports import comparison_charts as ccharts
from actstore.reports.assets import RESOURCE_ORDER
from actstore.reports.findings import findings_section
from actstore.reports.inputs import ReportError, ReportInputs, validated
from actstore.reports.page import build_page
from actstore.reports.render import check_out_path, write_atomically
from actstore.reports.sections import Figure, Limits, Section, build_sections
from actstore.reports.summaries import rounded
from actstore.reports.tables import html_table

#: columns each comparison frame must carry
COMPARISON_COLUMNS = {
    "models": ("model", "random_init", "layers", "languages"),
    "final_cross_modal": ("model", "group", "depth", "score", "baseline", "null"),
    "final_cross_lingual": ("model", "kind", "depth", "score", "baseline", "null"),
    "cross_modal_curves": ("model", "depth", "layer", "rel_depth", "score", "null"),
}


@dataclass(frozen=True)
class ComparisonInputs:
    """The comparison frames (see `COMPARISON_COLUMNS`) and every model's own report inputs."""

    frames: dict[str, pl.DataFrame]
    models: list[ReportInputs]
    measure: str = "svcca"
    #: `actstore.analyses.findings.findings_frames`: drawn first when it holds a real model
    findings: dict[str, pl.DataFrame | None] | None = None
    #: the study's published numbers beside ours (`actstore.published.beside_ours`), drawn after
    #: the findings when a model is one of the study's systems
    published: PublishedTable | None = None


def _check(inputs: ComparisonInputs) -> ComparisonInputs:
    if len(inputs.models) < 2:
        raise ReportError("A comparison needs at least two models; use a single-model report for one.")
    for name, columns in COMPARISON_COLUMNS.items():
        frame = inputs.frames.get(name)
        if not isinstance(frame, pl.DataFrame):
            raise ReportError(f"Comparison input {name!r} is missing; build it with "
                              f"actstore.analyses.comparison.comparison_frames.")
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ReportError(f"Comparison input {name!r} lacks columns {', '.join(absent)}; build it "
                              f"with actstore.analyses.comparison.comparison_frames.")
    return inputs


class _RenamedChart:
    """A chart whose spec reads renamed datasets and radio parameters (`to_dict` like Altair's).

    Radio inputs are grouped by their HTML name, which Vega sets to the parameter name: two
    t-SNE figures on one page would share one group unless the parameter is renamed too.
    """

    def __init__(self, chart: Any, datasets: dict[str, str], prefix: str):
        self.chart, self.datasets, self.prefix = chart, datasets, prefix

    def to_dict(self) -> dict:
        spec = _rename_data(self.chart.to_dict(), self.datasets)
        radios = sorted(_radio_params(spec))
        if not radios:
            return spec
        text = json.dumps(spec)
        for name in radios:
            text = re.sub(rf"\b{re.escape(name)}\b", f"{self.prefix}{name}", text)
        return json.loads(text)


def _rename_data(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "data" and isinstance(value, dict) and value.get("name") in names:
                value = {**value, "name": names[value["name"]]}
            out[key] = _rename_data(value, names)
        return out
    if isinstance(node, list):
        return [_rename_data(v, names) for v in node]
    return node


def _radio_params(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        bind = node.get("bind")
        if "name" in node and isinstance(bind, dict) and bind.get("input") == "radio":
            found.add(str(node["name"]))
        for value in node.values():
            found |= _radio_params(value)
    elif isinstance(node, list):
        for value in node:
            found |= _radio_params(value)
    return found


def _prefixed(sections: list[Section], datasets: dict[str, pl.DataFrame], index: int,
              model: str) -> tuple[list[Section], dict[str, pl.DataFrame]]:
    """One model's sections and datasets with ids and names made unique on the page."""
    names = {name: f"m{index}_{name}" for name in datasets}
    out = []
    for section in sections:
        parts: list[str | Figure] = []
        for part in section.parts:
            if isinstance(part, Figure):
                part = Figure(f"m{index}-{part.id}", part.title, part.caption,
                              _RenamedChart(part.chart, names, f"m{index}_"),
                              tuple(names[d] for d in part.datasets))
            parts.append(part)
        out.append(Section(f"m{index}-{section.id}", f"{model}: {section.title}", parts))
    return out, {names[k]: v for k, v in datasets.items()}


def _has_findings(inputs: ComparisonInputs) -> bool:
    """Whether the page opens with real models' findings (a real model is among them)."""
    prov = (inputs.findings or {}).get("provenance")
    return prov is not None and prov.height > 0


def _p(text: str, cls: str | None = None) -> str:
    return f'<p class="{cls}">{text}</p>' if cls else f"<p>{text}</p>"


def comparison_section(inputs: ComparisonInputs, datasets: dict[str, pl.DataFrame]) -> Section:
    """The study's side-by-side numbers: final cross-modal per level, final cross-lingual, curves."""
    frames, measure = inputs.frames, inputs.measure
    overview = frames["models"]
    models = overview["model"].to_list()
    checks = _has_findings(inputs) and overview.height > 0 and bool(overview["random_init"].all())
    section = Section("comparison", "Pipeline checks: random-init models compared" if checks
                      else "Comparison across models")
    random_init = overview.filter(pl.col("random_init"))["model"].to_list()
    if random_init:
        section.parts.append(
            '<div class="banner">RANDOM-INIT model' + ("s" if len(random_init) > 1 else "") + ": "
            + html.escape(", ".join(random_init)) + " — their numbers are a pipeline check, not findings."
            + (" Only the other models carry trained weights." if len(random_init) < len(models) else "")
            + "</div>")
    section.parts.append(html_table(overview, headers={
        "random_init": "random init", "layers": "deepest layer", "final_cross_modal": "final cross-modal depth",
        "final_cross_lingual": "final cross-lingual depth"}))
    every = [m.model for m in inputs.models]
    links = " · ".join(f'<a href="#m{i}-provenance">{html.escape(m)}</a>' for i, m in enumerate(every, 1))
    section.parts.append(_p(f"Each model's own sections follow: {links}."))

    cm = frames["final_cross_modal"]
    section.parts.append("<h3>Final-layer cross-modal similarity per resource level</h3>")
    if cm.height == 0:
        section.parts.append(_p("No model has cross-modal results (speech and text of the same "
                                "sentences); run <code>actstore analyze similarity --kind cross-modal "
                                f"--measure {html.escape(measure)}</code>.", "missing"))
    else:
        datasets["cmp_cm_final"] = rounded(cm)
        section.parts.append(Figure(
            "fig-cmp-cm-final", "Speech vs text at each model's final depth",
            f"{measure}(speech, text) of the same sentences at each model's final depth (table above), "
            "mean over all languages and per resource level, one bar per model; black tick: random "
            "sets of the same shapes; grey tick: shuffled rows (the null).",
            ccharts.final_cross_modal_bars(models, cm["group"].unique().to_list(), measure), ("cmp_cm_final",)))
        wide = cm.pivot(on="group", index="model", values="score")
        groups = [g for g in RESOURCE_ORDER if g in wide.columns] + sorted(
            set(wide.columns) - set(RESOURCE_ORDER) - {"model"})
        section.parts.append(html_table(
            wide.select("model", *groups).join(
                cm.filter(pl.col("group") == "all").select("model", "depth", "baseline", "null"), on="model"),
            headers={"depth": "final depth", "baseline": "baseline (all)", "null": "null (all)"}))

    xl = frames["final_cross_lingual"]
    section.parts.append("<h3>Final-layer cross-lingual similarity: speech-speech vs text-text</h3>")
    if xl.height == 0:
        section.parts.append(_p("No model has cross-lingual results (two or more languages); run "
                                "<code>actstore analyze similarity --kind cross-lingual "
                                f"--measure {html.escape(measure)}</code>.", "missing"))
    else:
        datasets["cmp_xl_final"] = rounded(xl)
        kinds = [k for k in SYMMETRIC_KINDS if k in set(xl["kind"])]
        section.parts.append(Figure(
            "fig-cmp-xl-final", "Language pairs at each model's final depth",
            f"Mean {measure} over language pairs (same-language pairs excluded) at each kind's final "
            "depth, one bar per model; black tick: random baseline; grey tick: shuffled null.",
            ccharts.final_cross_lingual_bars(models, kinds, measure), ("cmp_xl_final",)))
        section.parts.append(html_table(
            xl.pivot(on="kind", index="model", values="score"), headers={}))

    curves = frames["cross_modal_curves"]
    section.parts.append("<h3>Cross-modal similarity over depth</h3>")
    if curves.height == 0:
        section.parts.append(_p("No per-layer cross-modal results to draw.", "missing"))
    else:
        deepest = curves.group_by("model").agg(pl.col("layer").max())["layer"].unique().to_list()
        relative = len(deepest) > 1
        datasets["cmp_cm_curves"] = rounded(curves)
        how = ("The models have different numbers of layers, so depth is normalised: x = layer / the "
               "model's deepest stored layer (0 = embeddings, 1 = last layer)." if relative else
               f"All models have {deepest[0]} layers: x = layer number.")
        section.parts.append(Figure(
            "fig-cmp-cm-curves", "Per-layer curves on one axis",
            f"Mean {measure}(speech, text) over all languages per layer, one line per model; dashed: "
            f"shuffled null. {how} Points without a layer number (e.g. pooled) are in the bars above.",
            ccharts.cross_modal_curves(models, relative, measure), ("cmp_cm_curves",)))
    return section


def render_comparison_html(inputs: ComparisonInputs, limits: Limits | None = None,
                           generated_at: datetime | None = None) -> str:
    """The comparison page as one HTML string."""
    inputs = _check(inputs)
    datasets: dict[str, pl.DataFrame] = {}
    sections = [findings_section(inputs.findings, inputs.measure, datasets)] if _has_findings(inputs) else []
    if inputs.published is not None:
        from actstore.reports.published import published_section

        sections += [s for s in [published_section(inputs.published)] if s is not None]
    sections.append(comparison_section(inputs, datasets))
    for index, model_inputs in enumerate(inputs.models, 1):
        model_inputs = validated(model_inputs)
        own, own_data = build_sections(model_inputs, limits or Limits())
        own, own_data = _prefixed(own, own_data, index, model_inputs.model)
        sections += own
        datasets.update(own_data)
    title = ", ".join(m.model for m in inputs.models)
    return build_page(title, sections, datasets, generated_at)


def render_comparison(inputs: ComparisonInputs, out_path: str | os.PathLike, *,
                      limits: Limits | None = None, generated_at: datetime | None = None) -> Path:
    """Write the comparison page to `out_path` atomically; returns the resolved path."""
    out = check_out_path(out_path)
    return write_atomically(render_comparison_html(inputs, limits, generated_at), out)
