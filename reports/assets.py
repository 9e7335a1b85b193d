"""Static parts of the page: the Vega JavaScript bundle, the stylesheet and the colour palettes.

The report must open with no network, so Vega, Vega-Lite and Vega-Embed are inlined. vl-convert
ships them and builds one self-contained bundle (`javascript_bundle`) that sets `window.vegaEmbed`;
the page includes it once and every chart calls `vegaEmbed` on its own div. The bundle is pinned to
the Vega-Lite version of the installed Altair, so the specs Altair writes are the ones it reads.
"""

from __future__ import annotations

from functools import lru_cache

import altair as alt

#: Fixed colours, so a language or a modality has the same colour in every chart of the page.
CATEGORY_PALETTE = (
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d",
    "#ff9da6", "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8",
)
MODALITY_COLOURS = {"speech": "#d62728", "text": "#1f77b4"}
RESOURCE_COLOURS = {"all": "#222222", "high": "#2ca02c", "medium": "#ff7f0e", "low": "#9467bd"}
RESOURCE_ORDER = ("all", "high", "medium", "low")

#: Vega-Embed options: canvas is fast for 20k points; no action links that would go online.
EMBED_OPTIONS = {
    "renderer": "canvas",
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}


def vegalite_version() -> str:
    """The Vega-Lite schema version Altair writes, e.g. "v6.4.1"."""
    return alt.SCHEMA_VERSION


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega + Vega-Lite + Vega-Embed as one script (~0.9 MB), built offline by vl-convert.

    Cached: building it takes about a second. The bundle contains no `</script` sequence (checked
    in the tests), so it can sit inside a <script> element as is.
    """
    import vl_convert

    major_minor = "_".join(alt.SCHEMA_VERSION.split(".")[:2])
    return vl_convert.javascript_bundle(vl_version=major_minor)


STYLESHEET = """
:root { --ink: #1d2733; --muted: #5b6673; --rule: #d9dee4; --accent: #2b5d8a; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; background: #fafbfc; }
header { background: #fff; border-bottom: 1px solid var(--rule); padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; }
header .meta { color: var(--muted); font-size: 13px; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 48px; }
nav.toc { background: #fff; border: 1px solid var(--rule); border-radius: 6px; padding: 10px 20px;
          margin: 18px 0; }
nav.toc ol { margin: 4px 0; padding-left: 20px; columns: 2; }
section { background: #fff; border: 1px solid var(--rule); border-radius: 6px; padding: 8px 24px 20px;
          margin: 18px 0; }
h2 { border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { margin-bottom: 4px; }
figure { margin: 16px 0 24px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 900px; }
.chart { overflow-x: auto; }
.chart .vega-embed { display: flex; flex-direction: column; align-items: flex-start; }
.chart .vega-bindings { order: -1; margin: 4px 0 8px; font-size: 13px; }
.chart .vega-bind { display: inline-block; margin-right: 18px; }
.chart .vega-bind-name { font-weight: 600; margin-right: 4px; }
.banner { background: #fff3cd; border: 2px solid #d39e00; color: #6b4e00; padding: 10px 16px;
          border-radius: 6px; font-weight: 600; margin: 16px 0; }
.missing { background: #f1f3f5; border-left: 4px solid #adb5bd; padding: 8px 14px; color: #343a40; }
.note { color: #8a5a00; font-size: 13px; }
table.data { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
table.data th, table.data td { border-bottom: 1px solid var(--rule); padding: 3px 10px; text-align: left; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.data th { background: #f1f3f5; }
.chart-error { color: #b00020; font-family: monospace; }
ul.explain { color: var(--ink); font-size: 13px; max-width: 900px; margin: 2px 0 18px; padding-left: 18px;
             background: #f6f8fa; border-left: 3px solid #9fb3c8; padding: 6px 10px 6px 26px; }
ul.explain li { margin: 2px 0; }
.csv { font-size: 12px; color: var(--muted); margin-top: 4px; }
.csv a { color: var(--accent); margin-right: 8px; }
header .counts { font-size: 13px; margin: 4px 0 0; color: var(--ink); }
.counts { font-size: 13px; }
"""
