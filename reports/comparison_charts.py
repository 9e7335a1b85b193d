"""Altair charts of the comparison across models (the study's side-by-side figures).

Each chart reads one named dataset written by `actstore.reports.comparison`; models keep one
colour on every chart of the page (`model_scale`). Baselines and nulls are drawn beside each
score, as everywhere in actstore, because SVCCA of noise is far from 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt

from actstore.reports.assets import CATEGORY_PALETTE, RESOURCE_ORDER
from actstore.reports.charts import COLOUR_LINE_LEGEND, DASH_LEGEND, _heatmap, _lines_with_points

#: the reference ticks beside each bar
TICK_COLOURS = {"random baseline": "#222222", "shuffled null": "#999999"}


def model_scale(models: Sequence[str]) -> alt.Scale:
    """One colour per model, in the order the user named them."""
    return alt.Scale(domain=list(models),
                     range=[CATEGORY_PALETTE[i % len(CATEGORY_PALETTE)] for i in range(len(models))])


def grouped_bars(dataset: str, x: str, x_order: Sequence[str], x_title: str,
                 models: Sequence[str], measure: str) -> alt.LayerChart:
    """Bars of `score` per `x` category, one bar per model side by side; ticks: baseline and null."""
    base = alt.Chart(alt.Data(name=dataset))
    xe = alt.X(f"{x}:N", sort=list(x_order), title=x_title, axis=alt.Axis(labelAngle=0))
    offset = alt.XOffset("model:N", sort=list(models))
    tooltip = [alt.Tooltip("model:N"), alt.Tooltip(f"{x}:N"), alt.Tooltip("depth:N", title="final depth"),
               alt.Tooltip("score:Q", format=".3f"), alt.Tooltip("baseline:Q", format=".3f"),
               alt.Tooltip("null:Q", format=".3f")]
    bars = base.mark_bar().encode(
        x=xe, xOffset=offset, y=alt.Y("score:Q", title=measure, scale=alt.Scale(zero=True)),
        color=alt.Color("model:N", scale=model_scale(models), title="model"), tooltip=tooltip)
    ticks = (base.transform_fold(["baseline", "null"], as_=["series", "value"])
             .transform_calculate(series="datum.series == 'baseline' ? 'random baseline' : 'shuffled null'")
             .transform_filter("isValid(datum.value)")
             .mark_tick(thickness=3, size=14)
             .encode(x=xe, xOffset=offset, y="value:Q",
                     color=alt.Color("series:N", title="reference", legend=alt.Legend(symbolType="square"),
                                     scale=alt.Scale(domain=list(TICK_COLOURS), range=list(TICK_COLOURS.values()))),
                     tooltip=tooltip + [alt.Tooltip("series:N")]))
    return (alt.layer(bars, ticks).resolve_scale(color="independent")
            .properties(width=max(220, 70 * len(x_order) * max(1, len(models)) // 2), height=280))


def final_cross_modal_bars(models: Sequence[str], groups: Sequence[str], measure: str) -> alt.LayerChart:
    """The study's final-layer cross-modal score per resource level, models side by side."""
    order = [g for g in RESOURCE_ORDER if g in groups] + sorted(set(groups) - set(RESOURCE_ORDER))
    return grouped_bars("cmp_cm_final", "group", order, "languages (resource level)", models, measure)


def final_cross_lingual_bars(models: Sequence[str], kinds: Sequence[str], measure: str) -> alt.LayerChart:
    """The study's final-layer cross-lingual speech-speech vs text-text means, models side by side."""
    return grouped_bars("cmp_xl_final", "kind", kinds, "cross-lingual kind", models, measure)


def cross_modal_curves(models: Sequence[str], relative: bool, measure: str) -> alt.LayerChart:
    """All-languages cross-modal mean per layer, one line per model; dashed: shuffled null."""
    field, title = ("rel_depth:Q", "relative depth (layer / model's deepest layer)") if relative \
        else ("layer:Q", "layer")
    dash = alt.StrokeDash("series:N", scale=alt.Scale(domain=["score", "shuffled null"], range=[[1, 0], [2, 3]]),
                          title="series", legend=DASH_LEGEND)
    base = (alt.Chart(alt.Data(name="cmp_cm_curves"))
            .transform_fold(["score", "null"], as_=["series", "value"])
            .transform_calculate(series="datum.series == 'null' ? 'shuffled null' : 'score'")
            .transform_filter("isValid(datum.value)"))
    enc = {
        "x": alt.X(field, title=title, axis=alt.Axis() if relative else alt.Axis(tickMinStep=1, format="d")),
        "y": alt.Y("value:Q", title=measure, scale=alt.Scale(zero=False)),
        "color": alt.Color("model:N", scale=model_scale(models), title="model", legend=COLOUR_LINE_LEGEND),
        "detail": "series:N",
        "tooltip": [alt.Tooltip("model:N"), alt.Tooltip("depth:N"), alt.Tooltip("layer:Q"),
                    alt.Tooltip("rel_depth:Q", format=".2f", title="relative depth"),
                    alt.Tooltip("series:N"), alt.Tooltip("value:Q", format=".3f"),
                    alt.Tooltip("languages:Q")],
    }
    return _lines_with_points(base, enc, dash).properties(width=560, height=300)


def layer_lines(dataset: str, models: Sequence[str], depths: Sequence[str], measure: str,
                colour: str = "model") -> alt.LayerChart:
    """Mean score per depth, one line per `colour` value; dashed: random baseline and shuffled null."""
    dash = alt.StrokeDash("series:N", title="series", legend=DASH_LEGEND,
                          scale=alt.Scale(domain=["score", "random baseline", "shuffled null"],
                                          range=[[1, 0], [6, 4], [2, 3]]))
    base = (alt.Chart(alt.Data(name=dataset))
            .transform_fold(["score", "baseline", "null"], as_=["series", "value"])
            .transform_calculate(series="datum.series == 'null' ? 'shuffled null' : "
                                        "datum.series == 'baseline' ? 'random baseline' : 'score'")
            .transform_filter("isValid(datum.value)"))
    enc = {
        "x": alt.X("depth:N", sort=list(depths), title="depth", axis=alt.Axis(labelAngle=0)),
        "y": alt.Y("value:Q", title=measure, scale=alt.Scale(zero=False)),
        "color": alt.Color(f"{colour}:N", scale=model_scale(models), title=colour, legend=COLOUR_LINE_LEGEND),
        "detail": "series:N",
        "tooltip": [alt.Tooltip(f"{colour}:N"), alt.Tooltip("depth:N"), alt.Tooltip("series:N"),
                    alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("pairs:Q", title="language pairs")],
    }
    return _lines_with_points(base, enc, dash).properties(width=560, height=280)


def retrieval_lines(models: Sequence[str], depths: Sequence[str]) -> alt.LayerChart:
    """P@1 (solid) and xsim error (dashed) per depth, one colour per model."""
    dash = alt.StrokeDash("metric:N", title="metric", legend=DASH_LEGEND,
                          scale=alt.Scale(domain=["P@1", "xsim error"], range=[[1, 0], [5, 3]]))
    base = (alt.Chart(alt.Data(name="fnd_retrieval"))
            .transform_fold(["p_at_1", "xsim_error"], as_=["metric", "value"])
            .transform_calculate(metric="datum.metric == 'p_at_1' ? 'P@1' : 'xsim error'"))
    enc = {
        "x": alt.X("depth:N", sort=list(depths), title="depth", axis=alt.Axis(labelAngle=0)),
        "y": alt.Y("value:Q", title="P@1 / xsim error", scale=alt.Scale(domain=[0, 1])),
        "color": alt.Color("model:N", scale=model_scale(models), title="model", legend=COLOUR_LINE_LEGEND),
        "detail": "metric:N",
        "tooltip": [alt.Tooltip("model:N"), alt.Tooltip("depth:N"), alt.Tooltip("metric:N"),
                    alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("pairs:Q", title="language pairs"),
                    alt.Tooltip("n:Q", title="sentences per language")],
    }
    return _lines_with_points(base, enc, dash).properties(width=560, height=280)


def score_heatmap(dataset: str, x: str, y: str, x_order: Sequence[str], y_order: Sequence[str],
                  domain: tuple[float, float], measure: str, title: str, labels: bool,
                  extra_tooltip: Sequence[str] = ()) -> alt.LayerChart:
    """A viridis heatmap of `score` on a fixed domain (cells sized to fit ~1100 px)."""
    lo, hi = domain
    scale = alt.Scale(scheme="viridis", domain=[lo, hi])
    tooltip = [alt.Tooltip(f"{y}:N"), alt.Tooltip(f"{x}:N"), alt.Tooltip("score:Q", format=".3f"),
               alt.Tooltip("baseline:Q", format=".3f"), alt.Tooltip("null:Q", format=".3f"),
               *(alt.Tooltip(t) for t in extra_tooltip)]
    cell = max(12, min(44, 900 // max(1, len(x_order))))
    chart = _heatmap(alt.Data(name=dataset), f"{x}:N", f"{y}:N", "score:Q", x_order, y_order, scale, title,
                     tooltip, labels, f"datum.score < {lo + 0.5 * (hi - lo):.6g}", legend_title=measure)
    return chart.properties(width=cell * len(x_order), height=cell * len(y_order))


def group_bars(by: str, groups: Sequence[str], measure: str) -> alt.LayerChart:
    """Mean score per group (resource level or script) of `fnd_text_groups` (dots); ticks: baseline, null."""
    base = alt.Chart(alt.Data(name="fnd_text_groups")).transform_filter(alt.datum.by == by)
    x = alt.X("group:N", sort=list(groups), title=by, axis=alt.Axis(labelAngle=0 if len(groups) <= 6 else -45))
    tooltip = [alt.Tooltip("group:N", title=by), alt.Tooltip("score:Q", format=".3f"),
               alt.Tooltip("baseline:Q", format=".3f"), alt.Tooltip("null:Q", format=".3f"),
               alt.Tooltip("languages:Q"), alt.Tooltip("langs:N", title="language codes")]
    # dots on an axis fitted to the values: the groups differ in the second decimal, which bars
    # from zero would flatten
    bars = base.mark_circle(color="#1f77b4", size=90, opacity=1).encode(
        x=x, y=alt.Y("score:Q", title=f"mean {measure}", scale=alt.Scale(zero=False)), tooltip=tooltip)
    ticks = (base.transform_fold(["baseline", "null"], as_=["series", "value"])
             .transform_calculate(series="datum.series == 'baseline' ? 'random baseline' : 'shuffled null'")
             .transform_filter("isValid(datum.value)")
             .mark_tick(thickness=3, size=18)
             .encode(x=x, y="value:Q", tooltip=tooltip + [alt.Tooltip("series:N")],
                     color=alt.Color("series:N", title="reference",
                                     scale=alt.Scale(domain=list(TICK_COLOURS), range=list(TICK_COLOURS.values())))))
    return alt.layer(bars, ticks).properties(width=max(160, 34 * len(groups)), height=240, title=f"by {by}")
