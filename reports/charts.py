"""Altair charts for the report, one function per chart, drawing named datasets.

Every chart reads its rows from a *named* dataset (`alt.Data(name=...)`); the page stores each
dataset once and hands it to every chart that names it, so the three cross-lingual figures share
one copy of the grid. Interactive choices (depth, measure, metric, colour) are Vega-Lite
parameters bound to HTML selects: the browser filters, nothing is precomputed per choice. The
depth delta is computed in the browser too: over the rows of depths A and B,
delta = sum(score * ([depth = B] - [depth = A])), kept where both depths have the pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt

from actstore.reports.assets import CATEGORY_PALETTE, MODALITY_COLOURS, RESOURCE_COLOURS, RESOURCE_ORDER
from actstore.reports.lang_lines import FEW_LANGUAGES, highlighted_lines
from actstore.reports.summaries import RETRIEVAL_METRICS

KIND_COLOURS = {"speech-speech": MODALITY_COLOURS["speech"], "text-text": MODALITY_COLOURS["text"],
                "speech-text": "#7b4fa0"}
SERIES_DASH = {"score": [1, 0], "random baseline": [6, 4], "shuffled null": [2, 3]}
MODALITY_SHAPES = {"speech": "triangle-up", "text": "circle"}
MODALITY_DASH = {"speech": [1, 0], "text": [5, 3], "all": [2, 2]}
#: Legends of line charts show a short line, not a dot: coloured for colour, dark for dashes.
COLOUR_LINE_LEGEND = alt.Legend(symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1, symbolSize=300)
DASH_LEGEND = alt.Legend(symbolType="stroke", symbolStrokeWidth=2, symbolStrokeColor="#333",
                         symbolOpacity=1, symbolSize=300)


def lang_scale(langs: Sequence[str]) -> alt.Scale:
    """One colour per language, the same in every chart (palette repeats beyond 20 languages)."""
    colours = [CATEGORY_PALETTE[i % len(CATEGORY_PALETTE)] for i in range(len(langs))]
    return alt.Scale(domain=list(langs), range=colours)


def _lang_legend(n: int) -> alt.Legend:
    """Line legend listing every language (Vega cuts at ~30 by default), in 2 columns beyond 20."""
    return alt.Legend(symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1, symbolSize=300,
                      symbolLimit=n, columns=2 if n > 20 else 1)


#: Widest a figure may draw (px): the page's content column is ~1170 px, so nothing scrolls sideways.
FIGURE_WIDTH = 1140
#: Room per heatmap panel for its y labels and title, and for the colour legend (px).
AXIS_ROOM, LEGEND_ROOM = 100, 80


def _columns(n_langs: int, n_panels: int) -> int:
    """Side by side for few languages; two per row for many (each panel is then wide)."""
    return 2 if n_langs > 14 and n_panels > 2 else n_panels


def _panels(panels: list, n_langs: int) -> alt.ConcatChart | alt.HConcatChart:
    if _columns(n_langs, len(panels)) < len(panels):
        return alt.concat(*panels, columns=_columns(n_langs, len(panels)))
    return alt.hconcat(*panels)


def _panel_side(n_langs: int, n_panels: int) -> int:
    """Side of one square language heatmap so that a row of them fits FIGURE_WIDTH."""
    columns = max(1, _columns(n_langs, n_panels))
    fit = (FIGURE_WIDTH - LEGEND_ROOM - columns * AXIS_ROOM) // columns
    return max(150, min(_cell_size(n_langs), fit))


def _depth_x(depths: Sequence[str], title: str = "depth") -> alt.X:
    return alt.X("depth:N", sort=list(depths), title=title, axis=alt.Axis(labelAngle=0))


def _select(name: str, options: Sequence[str], value: str, label: str,
            labels: Sequence[str] | None = None) -> alt.Parameter:
    bind = alt.binding_select(options=list(options), name=label,
                              **({"labels": list(labels)} if labels else {}))
    return alt.param(name=name, value=value, bind=bind)


def _cell_size(n: int) -> int:
    """Side of a heatmap panel in pixels: ~36 px per row, within [150, 480]."""
    return max(150, min(480, 36 * n))


def cross_modal_lines(depths: Sequence[str], measures: Sequence[str], measure: str) -> alt.LayerChart:
    """Mean cross-modal score per depth: one line per resource group, dashed baseline and null."""
    pick = _select("cm_measure", measures, measure, "measure ")
    base = alt.Chart(alt.Data(name="cm_summary")).transform_filter("datum.measure == cm_measure")
    x = _depth_x(depths)
    colour = alt.Color("group:N", title="languages", legend=COLOUR_LINE_LEGEND, scale=alt.Scale(
        domain=list(RESOURCE_ORDER), range=[RESOURCE_COLOURS[g] for g in RESOURCE_ORDER]))
    band = base.transform_filter("isValid(datum.ci_low) && isValid(datum.ci_high)").mark_area(
        opacity=0.15).encode(x=x, y="ci_low:Q", y2="ci_high:Q", color=colour)
    enc = {
        "x": x,
        "y": alt.Y("value:Q", title="score", scale=alt.Scale(zero=False)),
        "color": colour,
        "strokeWidth": alt.condition("datum.group == 'all'", alt.value(3), alt.value(1.5)),
        "detail": "series:N",
        "tooltip": [alt.Tooltip("depth:N"), alt.Tooltip("group:N"), alt.Tooltip("series:N"),
                    alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("ci_low:Q", format=".3f"),
                    alt.Tooltip("ci_high:Q", format=".3f"), alt.Tooltip("n_langs:Q", title="languages")],
    }
    dash = alt.StrokeDash("series:N", title="series", legend=DASH_LEGEND, scale=alt.Scale(
        domain=list(SERIES_DASH), range=list(SERIES_DASH.values())))
    lines = _lines_with_points(base, enc, dash)
    return alt.layer(band, lines).add_params(pick).properties(width=560, height=300)


def _heatmap(data: alt.Data | alt.Chart, x: str, y: str, value: str, x_sort: Sequence[str],
             y_sort: Sequence[str], scale: alt.Scale, title: str, tooltip: list, labels: bool,
             dark_when: str, fmt: str = ".2f", legend_title: str = "score",
             x_title: str | None = None, y_title: str | None = None) -> alt.LayerChart:
    """Rect heatmap with optional value labels; `dark_when` is a Vega expression true on cells
    whose colour is dark (labels there are white, elsewhere near-black)."""
    base = data if isinstance(data, alt.Chart) else alt.Chart(data)
    rect = base.mark_rect().encode(
        x=alt.X(x, sort=list(x_sort), title=x_title or x.split(":")[0].replace("_", " "),
                axis=alt.Axis(labelAngle=0 if len(x_sort) <= 12 else -90)),
        y=alt.Y(y, sort=list(y_sort), title=y_title or y.split(":")[0].replace("_", " ")),
        color=alt.Color(value, scale=scale, title=legend_title),
        tooltip=tooltip,
    )
    layers = [rect]
    if labels:
        layers.append(base.mark_text(fontSize=10).encode(
            x=alt.X(x, sort=list(x_sort)), y=alt.Y(y, sort=list(y_sort)),
            text=alt.Text(value, format=fmt),
            color=alt.condition(dark_when, alt.value("white"), alt.value("#222")),
            tooltip=tooltip,
        ))
    return alt.layer(*layers).properties(title=title)


def _viridis(field: str, domain: tuple[float, float]) -> tuple[alt.Scale, str]:
    """Viridis on a fixed domain (colours mean the same at every depth); its lower half is dark."""
    lo, hi = domain
    return alt.Scale(scheme="viridis", domain=[lo, hi]), f"datum.{field} < {lo + 0.5 * (hi - lo):.6g}"


def cross_modal_heatmap(depths: Sequence[str], langs: Sequence[str], measure: str,
                        domain: tuple[float, float]) -> alt.LayerChart:
    """Per-language cross-modal score (one measure) as a language x depth heatmap."""
    tooltip = [alt.Tooltip("lang:N"), alt.Tooltip("depth:N"), alt.Tooltip("score:Q", format=".3f"),
               alt.Tooltip("baseline:Q", format=".3f"), alt.Tooltip("null:Q", format=".3f"),
               alt.Tooltip("n:Q"), alt.Tooltip("kx:Q"), alt.Tooltip("ky:Q"), alt.Tooltip("forced:Q")]
    scale, dark = _viridis("score", domain)
    chart = _heatmap(alt.Data(name="cm_rows"), "depth:N", "lang:N", "score:Q", depths, langs,
                     scale, f"{measure}: speech vs text, per language",
                     tooltip, labels=len(depths) * len(langs) <= 400, dark_when=dark)
    width = min(max(240, 48 * len(depths)), FIGURE_WIDTH - LEGEND_ROOM - AXIS_ROOM)
    return chart.properties(width=width, height=_cell_size(len(langs)))


def cross_lingual_heatmaps(depths: Sequence[str], langs: Sequence[str], kinds: Sequence[str],
                           domain: tuple[float, float], start: str) -> alt.ConcatChart | alt.HConcatChart:
    """One lang x lang heatmap per kind at the selected depth (shared colour scale), opening on `start`."""
    pick = _select("xl_depth", depths, start, "depth ")
    tooltip = [alt.Tooltip("kind:N"), alt.Tooltip("lang_a:N"), alt.Tooltip("lang_b:N"),
               alt.Tooltip("score:Q", format=".3f"), alt.Tooltip("null:Q", format=".3f"),
               alt.Tooltip("n:Q"), alt.Tooltip("kx:Q"), alt.Tooltip("ky:Q"), alt.Tooltip("forced:Q")]
    side = _panel_side(len(langs), len(kinds))
    scale, dark = _viridis("score", domain)
    panels = []
    for kind in kinds:
        base = alt.Chart(alt.Data(name="xl_rows")).transform_filter(
            alt.datum.kind == kind).transform_filter("datum.depth == xl_depth")
        ma, mb = kind.split("-")
        panels.append(_heatmap(base, "lang_b:N", "lang_a:N", "score:Q", langs, langs, scale, kind,
                               tooltip, labels=len(langs) <= 12, dark_when=dark,
                               x_title=f"{mb} (lang_b)", y_title=f"{ma} (lang_a)")
                      .properties(width=side, height=side))
    return _panels(panels, len(langs)).add_params(pick)


def cross_lingual_deltas(depths: Sequence[str], langs: Sequence[str], kinds: Sequence[str],
                         max_change: float, start: str) -> alt.ConcatChart | alt.HConcatChart:
    """score(depth B) - score(depth A) per language pair, A = first depth and B = `start` by default."""
    first = _select("xl_from", depths, depths[0], "from depth ")
    last = _select("xl_to", depths, start, "to depth ")
    tooltip = [alt.Tooltip("kind:N"), alt.Tooltip("lang_a:N"), alt.Tooltip("lang_b:N"),
               alt.Tooltip("delta:Q", format="+.3f")]
    side = _panel_side(len(langs), len(kinds))
    panels = []
    for kind in kinds:
        base = (
            alt.Chart(alt.Data(name="xl_rows"))
            .transform_filter(alt.datum.kind == kind)
            .transform_filter("datum.depth == xl_from || datum.depth == xl_to")
            .transform_calculate(signed="datum.score * ((datum.depth == xl_to ? 1 : 0)"
                                        " - (datum.depth == xl_from ? 1 : 0))")
            .transform_aggregate(delta="sum(signed)", rows="count()", groupby=["kind", "lang_a", "lang_b"])
            .transform_filter("datum.rows == 2 || xl_from == xl_to")
        )
        scale = alt.Scale(scheme="redblue", domain=[-max_change, max_change], reverse=True)
        panels.append(_heatmap(base, "lang_b:N", "lang_a:N", "delta:Q", langs, langs, scale,
                               f"{kind}: change", tooltip, labels=len(langs) <= 12, fmt="+.2f",
                               legend_title="delta", dark_when=f"abs(datum.delta) > {0.6 * max_change:.6g}",
                               x_title=f"{kind.split('-')[1]} (lang_b)", y_title=f"{kind.split('-')[0]} (lang_a)")
                      .properties(width=side, height=side, name=f"delta_{kind.replace('-', '_')}"))
    return _panels(panels, len(langs)).add_params(first, last)


def cross_lingual_mean_lines(depths: Sequence[str], kinds: Sequence[str]) -> alt.LayerChart:
    """Mean cross-lingual score per depth and kind, same-language pairs excluded; dashed: null."""
    colour = alt.Color("kind:N", legend=COLOUR_LINE_LEGEND,
                       scale=alt.Scale(domain=list(kinds), range=[KIND_COLOURS[k] for k in kinds]))
    base = alt.Chart(alt.Data(name="xl_means"))
    tooltip = [alt.Tooltip("kind:N"), alt.Tooltip("depth:N"), alt.Tooltip("score:Q", format=".3f"),
               alt.Tooltip("null:Q", format=".3f"), alt.Tooltip("n_pairs:Q", title="pairs")]
    score = base.mark_line(point=alt.OverlayMarkDef(filled=True)).encode(
        x=_depth_x(depths), y=alt.Y("score:Q", title="mean score (other-language pairs)",
                                    scale=alt.Scale(zero=False)), color=colour, tooltip=tooltip)
    null = base.mark_line(strokeDash=[2, 3]).encode(x=_depth_x(depths), y="null:Q", color=colour,
                                                     tooltip=tooltip)
    return alt.layer(score, null).properties(width=560, height=260)


def retrieval_heatmaps(depths: Sequence[str], langs: Sequence[str], panels: Sequence[str],
                       start: str) -> alt.ConcatChart | alt.HConcatChart:
    """Query lang x target lang retrieval score at the selected depth and metric, one panel per
    query->target modality; the tooltip gives the chance level 1/n (k/n for recall@k)."""
    depth = _select("ret_depth", depths, start, "depth ")
    metric = _select("ret_metric", list(RETRIEVAL_METRICS), "p_at_1", "metric ",
                     labels=list(RETRIEVAL_METRICS.values()))
    tooltip = [alt.Tooltip("panel:N"), alt.Tooltip("query:N"), alt.Tooltip("target:N"),
               alt.Tooltip("p_at_1:Q", title="P@1", format=".3f"),
               alt.Tooltip("recall_at_5:Q", title="recall@5", format=".3f"),
               alt.Tooltip("recall_at_10:Q", title="recall@10", format=".3f"),
               alt.Tooltip("xsim_ok:Q", title="1 - xsim error", format=".3f"), alt.Tooltip("n:Q"),
               alt.Tooltip("chance:Q", title="chance (1/n, k/n)", format=".3f")]
    side = _panel_side(len(langs), len(panels))
    charts = []
    for panel in panels:
        base = (
            alt.Chart(alt.Data(name="ret_rows"))
            .transform_filter(alt.datum.panel == panel)
            .transform_filter("datum.depth == ret_depth")
            .transform_calculate(value="datum[ret_metric]")
            .transform_calculate(chance="ret_metric == 'recall_at_5' ? min(1, 5 / datum.n) : "
                                        "ret_metric == 'recall_at_10' ? min(1, 10 / datum.n) : 1 / datum.n")
        )
        scale, dark = _viridis("value", (0.0, 1.0))
        query, target = panel.split("→")
        charts.append(_heatmap(base, "target:N", "query:N", "value:Q", langs, langs, scale, panel,
                               tooltip, labels=len(langs) <= 12, legend_title="metric", dark_when=dark,
                               x_title=f"target ({target})", y_title=f"query ({query})")
                      .properties(width=side, height=side))
    return _panels(charts, len(langs)).add_params(depth, metric)


def tsne_scatter(depths: Sequence[str], langs: Sequence[str], start: str) -> alt.Chart:
    """t-SNE points at the selected depth (opening on `start`), coloured by language or by modality."""
    depth = _select("tsne_depth", depths, start, "depth ")
    colour_by = alt.param(name="tsne_colour", value="lang",
                          bind=alt.binding_radio(options=["lang", "modality"],
                                                 labels=["language", "modality"], name="colour by "))
    modalities = list(MODALITY_COLOURS)
    scale = lang_scale(langs)
    domain = [*langs, *modalities]
    colour_range = [*scale.range, *MODALITY_COLOURS.values()]
    legend_values = (f"tsne_colour == 'lang' ? {list(langs)!r} : {modalities!r}").replace("'", '"')
    # 20 colours repeat beyond 20 languages: clicking a legend entry (shift: several) shows only it
    pick = alt.selection_point(name="tsne_pick", fields=["group"], bind="legend")
    return (
        alt.Chart(alt.Data(name="tsne_points"))
        .transform_filter("datum.depth == tsne_depth")
        .transform_lookup(lookup="key", from_=alt.LookupData(
            data=alt.Data(name="tsne_texts"), key="key", fields=["lang", "modality", "sid", "text"]))
        .transform_calculate(group="datum[tsne_colour]")
        .mark_point(filled=True, size=36)
        .encode(
            opacity=alt.condition(pick, alt.value(0.75), alt.value(0.05)),
            x=alt.X("x:Q", title=None, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("group:N", scale=alt.Scale(domain=domain, range=colour_range),
                            legend=alt.Legend(values={"expr": legend_values}, title=None,
                                              symbolLimit=len(domain), columns=2 if len(langs) > 20 else 1)),
            shape=alt.Shape("modality:N", scale=alt.Scale(
                domain=modalities, range=[MODALITY_SHAPES[m] for m in modalities])),
            tooltip=[alt.Tooltip("lang:N", title="language"), alt.Tooltip("modality:N"),
                     alt.Tooltip("sid:N", title="sentence id"), alt.Tooltip("text:N")],
        )
        .add_params(depth, colour_by, pick)
        .properties(width=620, height=520)
    )


def neuron_top_heatmap(depths: Sequence[str], targets: Sequence[str], max_rank: int,
                       domain: tuple[float, float], start: str) -> alt.FacetChart:
    """AP of the top-ranked dims per target at the selected depth (opening on `start`); cell label =
    dimension index."""
    depth = _select("neu_depth", depths, start, "depth ")
    base = alt.Chart(alt.Data(name="neu_top")).transform_filter("datum.depth == neu_depth")
    tooltip = [alt.Tooltip("target:N"), alt.Tooltip("modality:N"), alt.Tooltip("rank:O"),
               alt.Tooltip("dim:Q", title="dimension"), alt.Tooltip("ap:Q", title="AP", format=".3f")]
    y = alt.Y("target:N", sort=list(targets), title="target")
    x = alt.X("rank:O", title="rank")
    scale, dark = _viridis("ap", domain)
    rect = base.mark_rect().encode(x=x, y=y, color=alt.Color("ap:Q", title="AP", scale=scale),
                                   tooltip=tooltip)
    text = base.mark_text(fontSize=9).encode(
        x=x, y=y, text="dim:Q", tooltip=tooltip,
        color=alt.condition(dark, alt.value("white"), alt.value("#222")))
    return (
        alt.layer(rect, text).properties(width=26 * max_rank, height=_cell_size(len(targets)))
        .facet(column=alt.Column("modality:N", title="vectors of modality"))
        .resolve_scale(y="independent")
        .add_params(depth)
    )


def _lines_with_points(base: alt.Chart, enc: dict, dash: alt.StrokeDash | None = None) -> alt.LayerChart:
    """Lines (dashed by `dash`) with a point at each depth. The points are a separate layer without
    the dash channel: a dashed line with `point=True` gets an invisible dash legend in Vega-Lite."""
    line_enc = {k: v for k, v in enc.items() if k != "tooltip"}
    if dash is not None:
        line_enc["strokeDash"] = dash
    return alt.layer(base.mark_line().encode(**line_enc),
                     base.mark_point(filled=True, size=30).encode(**enc))


def lines_by_lang(base: alt.Chart, depths: Sequence[str], langs: Sequence[str], y: str, y_title: str,
                  modalities: Sequence[str] = (), extra_tooltip: Sequence[alt.Tooltip] = (),
                  levels: tuple[str, str, Sequence[str]] | None = None) -> alt.LayerChart:
    """Per-language line over depth; with `modalities`, one line per modality, dashed by modality.

    With more than FEW_LANGUAGES languages and `levels` = (chart name, lang -> level dataset, the
    levels in it), the
    lines are coloured by resource level and one language is highlighted at a time (`lang_lines`).
    """
    enc = {
        "x": _depth_x(depths),
        "y": alt.Y(y, title=y_title, scale=alt.Scale(zero=False)),
        "color": alt.Color("lang:N", scale=lang_scale(langs), title="language", legend=_lang_legend(len(langs))),
        "tooltip": [alt.Tooltip("lang:N"), alt.Tooltip("depth:N"), alt.Tooltip(y, format=".3f"),
                    *extra_tooltip],
    }
    dash = None
    if modalities:
        dash = alt.StrokeDash("modality:N", legend=DASH_LEGEND, scale=alt.Scale(
            domain=list(modalities), range=[MODALITY_DASH.get(m, [2, 2]) for m in modalities]))
        enc["detail"] = "modality:N"
        enc["tooltip"].append(alt.Tooltip("modality:N"))
    if levels is not None and len(langs) > FEW_LANGUAGES:
        return highlighted_lines(base, enc, levels[0], depths, langs, dash, levels[1], levels[2]).properties(
            width=720, height=320)
    return _lines_with_points(base, enc, dash).properties(width=560, height=280)


def neuron_overlap_lines(depths: Sequence[str], langs: Sequence[str], ks: Sequence[int],
                         levels: tuple[str, Sequence[str]] | None = None) -> alt.LayerChart:
    """Fraction of a language's top-k speech dims that are also among its top-k text dims."""
    pick = alt.param(name="neu_k", value=ks[0], bind=alt.binding_select(options=list(ks), name="k "))
    base = (alt.Chart(alt.Data(name="neu_overlap")).transform_filter("datum.k == neu_k")
            .transform_calculate(fraction="datum.shared / datum.k"))
    return lines_by_lang(base, depths, langs, "fraction:Q", "shared / k",
                         extra_tooltip=[alt.Tooltip("shared:Q"), alt.Tooltip("k:Q")],
                         levels=None if levels is None else ("neu_overlap", *levels)).add_params(pick)
