"""Per-language lines over depth that stay legible with the study's 36 languages.

Twenty colours cannot tell 36 languages apart (a repeating palette gives English and Amharic the
same blue). Beyond `FEW_LANGUAGES`, lines are coloured by resource level (three colours that mean
something), drawn thin and faint, and one language is brought forward by pointing at it or by
choosing it in the "highlight language" list: it is drawn thick and labelled at its last depth.
With few languages every line keeps its own colour and legend entry, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt

from actstore.reports.assets import RESOURCE_COLOURS

FEW_LANGUAGES = 12
LEVELS = ("high", "medium", "low", "")
LEVEL_COLOURS = [RESOURCE_COLOURS["high"], RESOURCE_COLOURS["medium"], RESOURCE_COLOURS["low"], "#8c8c8c"]
LEVEL_LEGEND = alt.Legend(symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1, symbolSize=300,
                          title="resource level", labelExpr="datum.label || 'unknown'")


def highlighted_lines(base: alt.Chart, enc: dict, name: str, depths: Sequence[str], langs: Sequence[str],
                      dash: alt.StrokeDash | None, levels: str,
                      present_levels: Sequence[str] = LEVELS) -> alt.LayerChart:
    """Faint lines coloured by resource level; the pointed-at or chosen language thick and labelled.

    `name` makes the parameter names unique on the page; `levels` is the named dataset mapping
    lang -> level (looked up in the browser, so the line data stay as they are), `present_levels`
    the levels it holds ("" = unknown).
    """
    hover = alt.selection_point(name=f"{name}_hover", fields=["lang"], on="pointerover",
                                clear="pointerout", nearest=True, empty=False)
    pick = alt.param(name=f"{name}_lang", value="", bind=alt.binding_select(
        options=["", *langs], labels=["(none)", *langs], name="highlight language "))
    test = {"or": [{"param": f"{name}_hover", "empty": False}, f"datum.lang == {name}_lang"]}
    base = base.transform_lookup(lookup="lang", from_=alt.LookupData(
        data=alt.Data(name=levels), key="lang", fields=["level"], ), default="")
    shown = [i for i, level in enumerate(LEVELS) if level in present_levels] or [3]
    colour = alt.Color("level:N", legend=LEVEL_LEGEND, scale=alt.Scale(
        domain=[LEVELS[i] for i in shown], range=[LEVEL_COLOURS[i] for i in shown]))
    lit = {"opacity": {"condition": {"test": test, "value": 1.0}, "value": 0.35},
           "strokeWidth": {"condition": {"test": test, "value": 3.5}, "value": 1.2}}
    line_enc = {**{k: v for k, v in enc.items() if k not in ("tooltip", "color")}, "color": colour,
                "detail": ["lang:N", "modality:N"] if "detail" in enc else "lang:N", **lit}
    if dash is not None:
        line_enc["strokeDash"] = dash
    lines = base.mark_line().encode(**line_enc)
    points = base.mark_point(filled=True, size=40).encode(
        x=enc["x"], y=enc["y"], color=colour, tooltip=enc["tooltip"],
        opacity={"condition": {"test": test, "value": 1.0}, "value": 0.3}).add_params(hover)
    order = f"indexof({list(depths)!r}, datum.depth)".replace("'", '"')
    label = (base.transform_filter(test).transform_calculate(order=order)
             .transform_joinaggregate(last="max(order)", groupby=["lang"])
             .transform_filter("datum.order == datum.last")
             .mark_text(align="left", dx=6, fontSize=12, fontWeight="bold")
             .encode(x=enc["x"], y=enc["y"], text="lang:N", color=colour))
    return alt.layer(lines, points, label).add_params(pick)
