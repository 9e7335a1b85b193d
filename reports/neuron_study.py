"""Charts of the neuron study over sites (issue 16): where selective neurons sit, intervention
effects against random controls, concentration by script and modality, language recovery.

Each `*_rows` function turns a stored result frame (`analyses.study_frames.neuron_study_frames`)
into the rows one chart draws; each chart function draws a *named* dataset (`alt.Data(name=...)`)
as `charts.py` does, so the page stores each dataset once and every chart's data downloads as CSV.
The sections that place them, with their notes and banners, are in `neuron_study_sections`.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from actstore.reports.assets import CATEGORY_PALETTE, MODALITY_COLOURS
from actstore.reports.charts import DASH_LEGEND

_MOD_SCALE = alt.Scale(domain=list(MODALITY_COLOURS), range=list(MODALITY_COLOURS.values()))
#: names the control sets of `intervene` store in `neuron_set`, and how the report labels them
CONTROL_LABELS = {"random": "random control", "matched": "displacement-matched control"}
CONTROL_COLOURS = {"random control": "#9a9a9a", "displacement-matched control": "#e08a2c"}
PANEL = 180  # px: width of one facet panel


def _site_label(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.concat_str("stack", pl.lit(" "), "site_type").alias("site"))


def _comparison(frame: pl.DataFrame) -> pl.DataFrame:
    """A readable comparison label: `language vs rest | speech` (within a modality) or `speech vs text`."""
    return _site_label(frame).with_columns(
        pl.when(pl.col("target_kind") == "language")
        .then(pl.concat_str(pl.lit("language vs rest | "), pl.col("within")))
        .otherwise(pl.lit("speech vs text")).alias("comparison"))


def spread_rows(spread: pl.DataFrame, direction: str = "positive") -> pl.DataFrame:
    """Per comparison, site and layer: the global top neurons found there (summed over the
    comparison's rankings: each target within each modality or language) and their count over the
    count expected from the site's width; `share` sums to 1 over a comparison's cells."""
    return (_comparison(spread.filter(pl.col("direction") == direction))
            .group_by("comparison", "site", "stack", "site_type", "layer")
            .agg(pl.col("n_top").sum(), pl.col("expected").sum(), pl.struct("target", "within").n_unique().alias("targets"),
                 pl.col("global_k").first())
            .with_columns((pl.col("n_top") / pl.col("expected")).alias("enrichment"),
                          (pl.col("n_top") / (pl.col("global_k") * pl.col("targets"))).alias("share"))
            .sort("comparison", "stack", "site_type", "layer"))


def spread_heatmap(name: str) -> alt.FacetChart:
    """Site x layer: top neurons over the count expected from width (1 = as its width predicts)."""
    return (alt.Chart(alt.Data(name=name)).mark_rect()
            .encode(x=alt.X("layer:O", title="layer"), y=alt.Y("site:N", title="site"),
                    color=alt.Color("enrichment:Q", scale=alt.Scale(scheme="viridis"),
                                    title="top neurons / expected"),
                    tooltip=["comparison:N", "site:N", "layer:O", "n_top:Q",
                             alt.Tooltip("expected:Q", format=".1f"), alt.Tooltip("enrichment:Q", format=".2f")])
            .properties(width=PANEL)
            .facet(column=alt.Column("comparison:N", title=None)))


def spread_bars(name: str) -> alt.FacetChart:
    """How the global top neurons distribute over layers (bar length) and site types (colour)."""
    return (alt.Chart(alt.Data(name=name)).mark_bar()
            .encode(x=alt.X("layer:O", title="layer"),
                    y=alt.Y("sum(share):Q", title="share of the top neurons", axis=alt.Axis(format="%")),
                    color=alt.Color("site:N", title="site"),
                    tooltip=["comparison:N", "site:N", "layer:O", "n_top:Q", alt.Tooltip("share:Q", format=".1%")])
            .properties(width=PANEL)
            .facet(column=alt.Column("comparison:N", title=None)))


def overlap_rows(overlap: pl.DataFrame) -> pl.DataFrame:
    """Per site, layer and direction: mean share of the speech-conditioned top-k that the
    text-conditioned top-k also holds, and the share expected by chance (k/width)."""
    return (_site_label(overlap)
            .group_by("site", "stack", "site_type", "layer", "direction")
            .agg((pl.col("shared") / pl.col("k")).mean().alias("shared_share"),
                 (pl.col("expected_by_chance") / pl.col("k")).mean().alias("chance"),
                 pl.col("lang").n_unique().alias("languages"), pl.col("k").max().alias("k"))
            .sort("site", "layer", "direction"))


def overlap_chart(name: str) -> alt.FacetChart:
    base = alt.Chart().encode(x=alt.X("layer:O", title="layer"), color=alt.Color("site:N", title="site"))
    line = base.mark_line(point=True).encode(
        y=alt.Y("shared_share:Q", title="share of the top-k shared", scale=alt.Scale(domain=[0, 1])),
        tooltip=["site:N", "layer:O", "direction:N", "k:Q", "languages:Q",
                 alt.Tooltip("shared_share:Q", format=".2f"), alt.Tooltip("chance:Q", format=".3f")])
    chance = base.mark_tick(strokeDash=[4, 3], thickness=1).encode(y="chance:Q")
    return (alt.layer(line, chance, data=alt.Data(name=name)).properties(width=PANEL)
            .facet(column=alt.Column("direction:N", title=None)))


def concentration_rows(conc: pl.DataFrame) -> pl.DataFrame:
    """Languages pooled per script: one row per site, layer, script and modality."""
    return (_site_label(conc.filter(pl.col("lang") == "all"))
            .select("site", "layer", "script", "modality", "n", "gini", "gini_lo", "gini_hi",
                    "top_share", "top_share_lo", "top_share_hi",
                    *[c for c in ("gini_noise_floor",) if c in conc.columns])
            .sort("site", "layer", "script", "modality"))


def concentration_chart(name: str, statistic: str = "gini") -> alt.FacetChart:
    """Per site and layer, concentration of each script by modality, with its 95% interval."""
    base = alt.Chart().encode(x=alt.X("layer:O"), color=alt.Color("modality:N", scale=_MOD_SCALE),
                              strokeDash=alt.StrokeDash("script:N", legend=DASH_LEGEND))
    line = base.mark_line(point=True).encode(
        y=alt.Y(f"{statistic}:Q", title=statistic.replace("_", " ")),
        tooltip=["site:N", "layer:O", "script:N", "modality:N", "n:Q", alt.Tooltip(f"{statistic}:Q", format=".3f"),
                 alt.Tooltip(f"{statistic}_lo:Q", format=".3f"), alt.Tooltip(f"{statistic}_hi:Q", format=".3f")])
    bars = base.mark_errorbar().encode(y=alt.Y(f"{statistic}_lo:Q", title=statistic.replace("_", " ")),
                                       y2=f"{statistic}_hi:Q")
    return (alt.layer(line, bars, data=alt.Data(name=name)).properties(width=PANEL)
            .facet(facet=alt.Facet("site:N", title=None), columns=4).resolve_scale(x="independent"))


def probe_rows(probe: pl.DataFrame) -> pl.DataFrame:
    return (probe.with_columns(pl.col("depth").str.replace(r"\.L\d+.*$", "").alias("stack"))
            .select("depth", "stack", "layer", "modality", "accuracy", "ci_lo", "ci_hi", "chance", "n")
            .sort("stack", "layer", "modality"))


def probe_chart(name: str) -> alt.FacetChart:
    """Probe accuracy per layer and modality (for decoder points: the conditioning), with its 95%
    interval and the chance level (majority share) as a dashed tick."""
    enc = dict(x=alt.X("layer:O"), color=alt.Color("modality:N", scale=_MOD_SCALE))
    line = alt.Chart().mark_line(point=True).encode(
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])), **enc,
        tooltip=["depth:N", "modality:N", "n:Q", alt.Tooltip("accuracy:Q", format=".3f"),
                 alt.Tooltip("ci_lo:Q", format=".3f"), alt.Tooltip("ci_hi:Q", format=".3f"),
                 alt.Tooltip("chance:Q", format=".3f")])
    band = alt.Chart().mark_errorbar().encode(y=alt.Y("ci_lo:Q", title="accuracy"), y2="ci_hi:Q", **enc)
    chance = alt.Chart().mark_tick(color="#555", strokeDash=[4, 3], thickness=1).encode(x="layer:O", y="chance:Q")
    return (alt.layer(band, line, chance, data=alt.Data(name=name)).properties(width=PANEL * 2)
            .facet(column=alt.Column("stack:N", title=None)).resolve_scale(x="independent"))


#: what an intervention row measures: (value column, interval columns, axis title), by metric;
#: `lang_prob`/`lang_share` rows are null where the family has no language step / no --generate ran
EFFECTS = {
    "loglik": ("delta_per_token", ("ci_low", "ci_high"), "change of log-likelihood per token"),
    "lang_prob": ("lang_prob_delta", ("lang_prob_ci_low", "lang_prob_ci_high"),
                  "change of the first-step probability of the language"),
    "lang_share": ("lang_share_delta", ("lang_share_ci_low", "lang_share_ci_high"),
                   "change of the share of outputs in the expected language"),
}


def _with_deltas(iv: pl.DataFrame) -> pl.DataFrame:
    """`<metric>_delta` from the metric without and with the clamp where only those are stored."""
    for metric in ("lang_prob", "lang_share"):
        if f"{metric}_delta" not in iv.columns and {metric, f"clamped_{metric}"} <= set(iv.columns):
            iv = iv.with_columns((pl.col(f"clamped_{metric}") - pl.col(metric)).alias(f"{metric}_delta"))
    return iv


def effects_present(rows: pl.DataFrame) -> dict[str, tuple[str, tuple[str, str] | None, str]]:
    """The metrics with values in `rows`, each with its interval columns where they hold values."""
    out = {}
    for metric, (value, interval, title) in EFFECTS.items():
        if value in rows.columns and rows[value].is_not_null().any():
            has_ci = all(c in rows.columns and rows[c].is_not_null().any() for c in interval)
            out[metric] = (value, interval if has_ci else None, title)
    return out


def intervention_rows(iv: pl.DataFrame) -> pl.DataFrame:
    """One row per stored intervention, labelled: `experiment` (site, k, value: a chosen set and
    its controls), `set` (the chosen set's name or its control kind), `kind` (chosen/control)."""
    iv = _with_deltas(iv)
    extra = [c for c in ("n_tokens", "displacement", "clamped_top_lang") if c in iv.columns]
    effects = [c for value, interval, _ in EFFECTS.values() for c in (value, *interval)
               if c in iv.columns and c != "delta_per_token"]
    frame = iv.with_columns(
        pl.concat_str("site", pl.lit(" | k="), pl.col("k").cast(pl.String), pl.lit(" | "), "value").alias("experiment"),
        pl.col("neuron_set").replace(CONTROL_LABELS).alias("set"),
        pl.when(pl.col("neuron_set").is_in(list(CONTROL_LABELS))).then(pl.lit("control"))
        .otherwise(pl.lit("chosen")).alias("kind"),
        pl.concat_str(pl.lit("conditioned on "), pl.col("modality")).alias("conditioning"))
    return (frame.select("experiment", "site", "k", "value", "set", "kind", "seed", "lang", "conditioning",
                         "n_sentences", "delta_per_token", *effects, *extra)
            .sort("experiment", "lang", "conditioning", "kind", "set", "seed"))


def _set_scale(sets: list[str]) -> alt.Scale:
    chosen = [s for s in sets if s not in CONTROL_COLOURS]
    colours = {**{s: CATEGORY_PALETTE[i % len(CATEGORY_PALETTE)] for i, s in enumerate(chosen)}, **CONTROL_COLOURS}
    domain = chosen + [s for s in CONTROL_COLOURS if s in sets]
    return alt.Scale(domain=domain, range=[colours[s] for s in domain])


def intervention_chart(name: str, sets: list[str], value: str, interval: tuple[str, str] | None,
                       title: str) -> alt.FacetChart:
    """Per language (rows of each panel): the chosen set's effect beside every control seed's,
    with bootstrap intervals where stored; a panel per experiment and conditioning."""
    enc = dict(y=alt.Y("lang:N", title="language"),
               color=alt.Color("set:N", scale=_set_scale(sets), title="neuron set"),
               yOffset=alt.YOffset("kind:N"))
    dots = alt.Chart().mark_point(filled=True, size=60).encode(
        x=alt.X(f"{value}:Q", title=title), shape=alt.Shape("kind:N", title=None), **enc,
        tooltip=["experiment:N", "conditioning:N", "set:N", "seed:Q", "lang:N", "n_sentences:Q",
                 alt.Tooltip(f"{value}:Q", format=".4f"),
                 *[alt.Tooltip(f"{c}:Q", format=".4f") for c in (interval or ())]])
    layers = [alt.Chart().mark_rule(color="#777").encode(x=alt.datum(0)), dots]
    if interval:
        layers.insert(1, alt.Chart().mark_errorbar(ticks=True).encode(
            x=alt.X(f"{interval[0]}:Q", title=title), x2=f"{interval[1]}:Q", **enc))
    return (alt.layer(*layers, data=alt.Data(name=name)).properties(width=PANEL * 2)
            .facet(row=alt.Row("experiment:N", title=None), column=alt.Column("conditioning:N", title=None)))
