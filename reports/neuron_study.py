"""Charts of the neuron study over sites (issue 16): where selective neurons sit, concentration
by script and modality, language recovery per layer.

Standalone: each function takes the stored result frames (`analyses.neuron_sites.
load_site_tables`, `analyses.probe.load_probe`) and returns one Altair chart with its rows
inline, so a report section can append it without touching the shared datasets. Hook: a section
calls `neuron_study_charts(site_tables, probe)` and renders the charts it returns (None: nothing
stored). Random-init banners stay with the section that shows them.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from actstore.reports.assets import MODALITY_COLOURS

_MOD_SCALE = alt.Scale(domain=list(MODALITY_COLOURS), range=list(MODALITY_COLOURS.values()))


def _comparison(frame: pl.DataFrame) -> pl.DataFrame:
    """A readable comparison label: `language | speech` (within a modality) or `modality`."""
    return frame.with_columns(
        pl.when(pl.col("target_kind") == "language")
        .then(pl.concat_str(pl.lit("language vs rest | "), pl.col("within")))
        .otherwise(pl.lit("speech vs text")).alias("comparison"),
        pl.concat_str("stack", pl.lit(" "), "site_type").alias("site"))


def spread_heatmap(spread: pl.DataFrame, direction: str = "positive") -> alt.Chart:
    """Site x layer: share of the global top neurons per site over its expected share (1 = as many
    as its width predicts), averaged over the targets of each comparison."""
    rows = (_comparison(spread.filter(pl.col("direction") == direction))
            .group_by("comparison", "site", "layer")
            .agg((pl.col("n_top").sum() / pl.col("expected").sum()).alias("enrichment"),
                 pl.col("n_top").sum().alias("n_top"))
            .sort("comparison", "site", "layer"))
    return (alt.Chart(alt.Data(values=rows.to_dicts())).mark_rect()
            .encode(x=alt.X("layer:O", title="layer"), y=alt.Y("site:N", title="site"),
                    color=alt.Color("enrichment:Q", scale=alt.Scale(scheme="viridis"),
                                    title="top neurons / expected"),
                    tooltip=["comparison:N", "site:N", "layer:O", "n_top:Q",
                             alt.Tooltip("enrichment:Q", format=".2f")])
            .facet(column=alt.Column("comparison:N", title=None))
            .properties(title=f"Where the most selective neurons sit ({direction} direction)"))


def concentration_chart(conc: pl.DataFrame, statistic: str = "gini") -> alt.Chart:
    """Per site and layer, concentration of each script (languages pooled) by modality, with its
    basic-bootstrap 95% interval."""
    rows = (conc.filter(pl.col("lang") == "all")
            .with_columns(pl.concat_str("stack", pl.lit(" "), "site_type").alias("site"))
            .select("site", "layer", "script", "modality", "n", statistic, f"{statistic}_lo", f"{statistic}_hi"))
    base = alt.Chart(alt.Data(values=rows.to_dicts())).encode(
        x=alt.X("layer:O"), color=alt.Color("modality:N", scale=_MOD_SCALE),
        strokeDash=alt.StrokeDash("script:N"))
    line = base.mark_line(point=True).encode(
        y=alt.Y(f"{statistic}:Q", title=statistic.replace("_", " ")),
        tooltip=["site:N", "layer:O", "script:N", "modality:N", "n:Q", alt.Tooltip(f"{statistic}:Q", format=".3f")])
    bars = base.mark_errorbar().encode(y=f"{statistic}_lo:Q", y2=f"{statistic}_hi:Q")
    return (alt.layer(line, bars).facet(column=alt.Column("site:N", title=None))
            .properties(title=f"Activation concentration ({statistic}) by script and modality"))


def probe_chart(probe: pl.DataFrame) -> alt.Chart:
    """Probe accuracy per layer and modality (for decoder points: the conditioning), with its 95%
    interval and the chance level (majority share) as a dashed rule."""
    rows = (probe.with_columns(pl.col("depth").str.split(".").list.first().alias("stack"))
            .select("depth", "stack", "layer", "modality", "accuracy", "ci_lo", "ci_hi", "chance", "n"))
    base = alt.Chart(alt.Data(values=rows.to_dicts()))
    enc = dict(x=alt.X("layer:O"), color=alt.Color("modality:N", scale=_MOD_SCALE))
    line = base.mark_line(point=True).encode(
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])), **enc,
        tooltip=["depth:N", "modality:N", "n:Q", alt.Tooltip("accuracy:Q", format=".3f"),
                 alt.Tooltip("chance:Q", format=".3f")])
    band = base.mark_errorbar().encode(y="ci_lo:Q", y2="ci_hi:Q", **enc)
    chance = base.mark_tick(color="#555", strokeDash=[4, 3], thickness=1).encode(x="layer:O", y="chance:Q")
    return (alt.layer(band, line, chance).facet(column=alt.Column("stack:N", title=None))
            .properties(title="Language recovery: linear probe accuracy per layer (tick: chance)"))


def neuron_study_charts(site_tables: dict[str, pl.DataFrame | None],
                        probe: pl.DataFrame | None) -> dict[str, alt.Chart]:
    """The charts the stored tables allow, by name (empty when nothing is stored)."""
    out = {}
    spread = site_tables.get("neuron_sites_spread")
    if spread is not None and spread.height:
        out["spread"] = spread_heatmap(spread)
    conc = site_tables.get("site_concentration")
    if conc is not None and conc.height:
        out["concentration"] = concentration_chart(conc)
        out["top_share"] = concentration_chart(conc, "top_share")
    if probe is not None and probe.height:
        out["probe"] = probe_chart(probe)
    return out
