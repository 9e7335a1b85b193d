"""Altair charts of the comparison across models (the study's side-by-side figures).

Each chart reads one named dataset written by `actstore.reports.comparison`; models keep one
colour on every chart of the page (`model_scale`). Baselines and nulls are drawn beside each
score, as everywhere in actstore, because SVCCA of noise is far from 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt

from actstore.reports.assets import CATEGORY_PALETTE, RESOURCE_ORDER
from actstore.reports.charts import COLOUR_LINE_LEGEND, DASH_LEGEND, _lines_with_points

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
