"""The neuron study's sections of the report (issue 16): where selective neurons sit, interventions
against random controls, concentration by script and modality, language recovery per layer.

A section exists only where the store holds its results: a model without sites, probe or
interventions gets a report without these sections (no placeholder, no error), since most models
of a FLEURS-style study never run the neuron study. Every section of a random-init model opens
with the RANDOM-INIT banner, and every chart has its "how to read this" (`explain`).
"""

from __future__ import annotations

import html

import polars as pl

from actstore.reports import neuron_study as charts
from actstore.reports.explain import (INTERVENTION, INTERVENTION_PROB, OUTPUT_LANGUAGE, PROBE, SITE_BARS, SITE_CONCENTRATION,
                                      SITE_OVERLAP, SITE_SPREAD, explain_html)
from actstore.reports.section_parts import RANDOM_INIT_BANNER, Context, Figure, Section, note_html, paragraph
from actstore.reports.summaries import rounded
from actstore.reports.tables import html_table

#: best neurons listed per comparison and target in the top-neuron table
TABLE_TOP = 3


def _section(ctx: Context, sid: str, title: str, intro: str) -> Section:
    section = Section(sid, title)
    if ctx.inputs.provenance.get("random_init"):
        section.parts.append(RANDOM_INIT_BANNER)
    section.parts.append(paragraph(html.escape(intro)))
    return section


def _start(ctx: Context, frame: pl.DataFrame | None, to_rows, dataset: str, sid: str, title: str,
           intro: str, exact: bool = False) -> tuple[Section, pl.DataFrame, str] | None:
    """A section drawing one stored frame: (section, its chart rows, their dataset name), or None
    when nothing is stored. `exact`: keep full precision (the page rounds to 4 decimals, which
    would flatten log-likelihood changes of 1e-5 to 0; intervention rows are few)."""
    if frame is None:
        return None
    rows = to_rows(frame)
    if exact:
        ctx.datasets[dataset] = rows
        return _section(ctx, sid, title, intro), rows, dataset
    return _section(ctx, sid, title, intro), rows, ctx.add(dataset, rows)


def top_table(top: pl.DataFrame) -> pl.DataFrame:
    """Per comparison and target (high activation = the target), the best neurons over all sites."""
    rows = charts._comparison(top.filter(pl.col("direction") == "positive"))
    return (rows.sort("ap", "depth", "neuron", descending=[True, False, False])
            .group_by("comparison", "target", maintain_order=True).head(TABLE_TOP)
            .select("comparison", "target", "depth", "neuron", "ap", "prior")
            .sort("comparison", "target", "ap", descending=[False, False, True]))


def site_section(ctx: Context) -> Section | None:
    """Where selective neurons sit: site x layer heatmap, layer/site-type shares, overlap, top table."""
    spread, overlap, top = ctx.inputs.site_spread, ctx.inputs.site_overlap, ctx.inputs.site_top
    if spread is None and top is None:
        return None
    section = _section(ctx, "neuron-sites", "Neuron study: where selective neurons sit",
                       "Language-selective and modality-selective neurons at every stored neuron site "
                       "(FFN activations, attention q/k/v, the decoder's cross-attention k/v), ranked by "
                       "average precision (actstore analyze neurons).")
    if spread is not None:
        rows = charts.spread_rows(spread)
        k = int(spread["global_k"].max())
        name = ctx.add("nst_spread", rows)
        section.parts.append(Figure(
            "fig-nst-spread", "Site x layer: where the top neurons sit",
            f"The {k} neurons of highest AP over all sites, per comparison and target (high activation = "
            "the target), counted per site and layer, over the count the site's width predicts.",
            charts.spread_heatmap(name), (name,)))
        section.parts.append(explain_html(SITE_SPREAD))
        section.parts.append(Figure(
            "fig-nst-layers", "Over layers and site types",
            "Share of the same top neurons per layer, coloured by site type.",
            charts.spread_bars(name), (name,)))
        section.parts.append(explain_html(SITE_BARS))
    if overlap is not None:
        name = ctx.add("nst_overlap", charts.overlap_rows(overlap))
        section.parts.append(Figure(
            "fig-nst-overlap", "Speech and text top sets",
            "Shared share of the top-k neurons ranked on speech-conditioned and on text-conditioned "
            "rows of the same decoder site; dashed tick: chance (k/width).",
            charts.overlap_chart(name), (name,)))
        section.parts.append(explain_html(SITE_OVERLAP))
    if top is not None:
        section.parts.append(f"<h3>Most selective neurons (best {TABLE_TOP} per target over all sites)</h3>")
        section.parts.append(paragraph("prior: the AP of an uninformative neuron (the target's share of rows).",
                                       "note"))
        section.parts.append(html_table(rounded(top_table(top))))
    return section


def _effect_table(rows: pl.DataFrame, effects: dict) -> pl.DataFrame:
    """Per experiment, language and conditioning: the chosen set's changes beside the mean and
    range of its controls' (each metric stored)."""
    keys = ["experiment", "lang", "conditioning"]
    chosen = rows.filter(pl.col("kind") == "chosen")
    cols = [c for value, interval, _ in effects.values() for c in (value, *(interval or ()))]
    out = chosen.select(*keys, pl.col("set").alias("chosen set"), "n_sentences", *cols)
    for label in charts.CONTROL_LABELS.values():
        ctrl = rows.filter(pl.col("set") == label)
        if ctrl.height:
            aggs = [pl.len().alias(f"{label}: seeds")]
            for value, _, _ in effects.values():
                aggs += [pl.col(value).mean().alias(f"{label}: mean {value}"),
                         pl.col(value).min().alias(f"{label}: min {value}"),
                         pl.col(value).max().alias(f"{label}: max {value}")]
            out = out.join(ctrl.group_by(keys).agg(aggs), on=keys, how="left")
    return out.sort(keys)


#: figure id, title and caption per intervention metric
_IV_FIGURES = {
    "loglik": ("fig-nst-iv", "Change of target log-likelihood per token", INTERVENTION),
    "lang_prob": ("fig-nst-iv-prob", "Change of the first-step language probability", INTERVENTION_PROB),
    "lang_share": ("fig-nst-iv-lang", "Output in the expected language (--generate)", OUTPUT_LANGUAGE),
}


def intervention_section(ctx: Context) -> Section | None:
    """Intervention effects of the chosen sets against random (and displacement-matched) controls."""
    started = _start(ctx, ctx.inputs.interventions, charts.intervention_rows, "nst_iv", "interventions",
                     "Neuron study: interventions against random controls",
                     "A neuron set is held at a value (the median over the reference rows, zero or the mean) "
                     "while the model decodes held-out sentences (actstore intervene); sets of the same size "
                     "and site are the controls.", exact=True)
    if started is None:
        return None
    section, rows, name = started
    effects = charts.effects_present(rows)
    if effects["loglik"][1] is None:
        section.parts.append(note_html("No bootstrap intervals are stored for these rows (rerun actstore "
                                       "intervene to add them); points are the estimates alone."))
    sets = list(dict.fromkeys(rows["set"].to_list()))
    for metric, (value, interval, title) in effects.items():
        fid, heading, how = _IV_FIGURES[metric]
        section.parts.append(Figure(
            fid, heading, "Per language: the chosen set (filled circle) beside every control seed (squares); "
            "bars: 95% bootstrap interval over sentences, where stored; grey rule: no change.",
            charts.intervention_chart(name, sets, value, interval, title), (name,)))
        section.parts.append(explain_html(how))
    section.parts.append("<h3>Chosen sets beside their controls</h3>")
    section.parts.append(html_table(_effect_table(rows, effects), digits=6))
    return section


def concentration_section(ctx: Context) -> Section | None:
    """Gini and top-1% share per site and layer, by script and modality, with intervals."""
    started = _start(ctx, ctx.inputs.site_concentration, charts.concentration_rows, "nst_conc",
                     "site-concentration", "Neuron study: activation concentration by script and modality",
                     "How much of a site's activation mass sits in few neurons, per script (its languages "
                     "pooled) and modality (for decoder sites: the conditioning).")
    if started is None:
        return None
    section, _, name = started
    for stat, title in (("gini", "Gini"), ("top_share", "Share of the mass in the top 1% of neurons")):
        section.parts.append(Figure(
            f"fig-nst-{stat.replace('_', '-')}", title,
            f"{title} of mean |activation| per site and layer; colour: modality, dash: script; bars: 95% "
            "bootstrap interval over items.", charts.concentration_chart(name, stat), (name,)))
    section.parts.append(explain_html(SITE_CONCENTRATION))
    return section


def probe_section(ctx: Context) -> Section | None:
    """Language recovery: probe accuracy per layer, speech- vs text-conditioned, with chance."""
    started = _start(ctx, ctx.inputs.probe, charts.probe_rows, "nst_probe", "language-probe",
                     "Neuron study: language recovery per layer",
                     "Can the source language still be read from each layer's states? A linear probe per "
                     "layer and conditioning (actstore analyze probe).")
    if started is None:
        return None
    section, rows, name = started
    section.parts.append(Figure(
        "fig-nst-probe", "Probe accuracy per layer",
        "Cross-validated accuracy per layer, speech- vs text-conditioned; bars: 95% interval; dashed "
        "tick: chance.", charts.probe_chart(name), (name,)))
    section.parts.append(explain_html(PROBE))
    section.parts.append(html_table(rounded(rows)))
    return section


STUDY_BUILDERS = (site_section, intervention_section, concentration_section, probe_section)


def study_sections(ctx: Context) -> list[Section]:
    """The neuron study's sections the stored results allow, in page order."""
    return [s for s in (build(ctx) for build in STUDY_BUILDERS) if s is not None]
