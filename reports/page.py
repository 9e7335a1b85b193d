"""Assemble sections into one self-contained HTML page.

Layout: header (title, model, generation time), table of contents, the sections, then three
scripts: the Vega bundle (once), the page data (each dataset once, column-wise: a list per column
is about half the size of a list of records), and a loop that gives every chart div its spec plus
the datasets it names and calls `vegaEmbed`. A chart that fails to draw shows its error in its div
and logs it to the console; `document.body.dataset.charts` becomes "ready" when all have settled.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone

import polars as pl

from actstore.reports.assets import EMBED_OPTIONS, STYLESHEET, vega_bundle, vegalite_version
from actstore.reports.sections import Figure, Section

EMBED_SCRIPT = """
(function () {
  function decode(column) {  // {levels, codes}: a dictionary-encoded string column
    return Array.isArray(column) ? column : column.codes.map(function (c) { return c === null ? null : column.levels[c]; });
  }
  function rows(encoded) {
    const names = Object.keys(encoded);
    const columns = names.map(function (name) { return decode(encoded[name]); });
    const n = names.length ? columns[0].length : 0;
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const row = {};
      for (let c = 0; c < names.length; c++) row[names[c]] = columns[c][i];
      out[i] = row;
    }
    return out;
  }
  const data = {};
  for (const [name, columns] of Object.entries(ACTSTORE_DATA)) data[name] = rows(columns);
  window.actstoreViews = {};
  const jobs = ACTSTORE_FIGURES.map(function (fig) {
    const spec = Object.assign({}, fig.spec, {datasets: {}});
    for (const name of fig.datasets) spec.datasets[name] = data[name];
    return vegaEmbed('#' + fig.id, spec, ACTSTORE_EMBED_OPTIONS)
      .then(function (result) { window.actstoreViews[fig.id] = result.view; })
      .catch(function (err) {
        console.error('chart ' + fig.id + ' failed: ' + err);
        const div = document.getElementById(fig.id);
        div.textContent = 'This chart could not be drawn: ' + err;
        div.className = 'chart chart-error';
      });
  });
  Promise.all(jobs).then(function () { document.body.dataset.charts = 'ready'; });
  // CSV links: the file is built on click from the dataset embedded above (a Blob, no network)
  document.querySelectorAll('a[data-csv]').forEach(function (link) {
    link.addEventListener('click', function () {
      if (link.href.startsWith('blob:')) return;
      const text = window.actstoreCsv(link.dataset.csv);
      link.href = URL.createObjectURL(new Blob([text], {type: 'text/csv;charset=utf-8'}));
    });
  });
})();
"""

#: `actstoreCsv(name)`: one embedded dataset as CSV text (header row; strings quoted when needed;
#: null as an empty field). Separate from the embed loop so a test can run it on the page's data.
CSV_SCRIPT = """
window.actstoreCsv = function (name) {
  const encoded = ACTSTORE_DATA[name];
  const names = Object.keys(encoded);
  const columns = names.map(function (c) {
    const col = encoded[c];
    return Array.isArray(col) ? col : col.codes.map(function (k) { return k === null ? null : col.levels[k]; });
  });
  function field(v) {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\\r\\n]/.test(s) || s !== s.trim() ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  const lines = [names.map(field).join(',')];
  const n = names.length ? columns[0].length : 0;
  for (let i = 0; i < n; i++) lines.push(columns.map(function (col) { return field(col[i]); }).join(','));
  return lines.join('\\r\\n') + '\\r\\n';
};
"""


def script_json(value: object) -> str:
    """JSON safe inside a <script> element: '<', '>' and '&' escaped so text can't close the tag."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _columns(frame: pl.DataFrame) -> dict[str, list | dict]:
    """Column-wise plain Python values; NaN/inf become null (JSON has neither).

    A string column with few distinct values (depth, kind, language) is dictionary-encoded as
    {"levels": [...], "codes": [...]}: a code is 1-2 characters where the label is up to 15,
    which roughly halves large grids. The page script decodes it before Vega sees the rows.
    """
    floats = [c for c, t in frame.schema.items() if t in (pl.Float32, pl.Float64)]
    frame = frame.with_columns(
        pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c) for c in floats)
    out: dict[str, list | dict] = {}
    for name, column in frame.to_dict().items():
        if column.dtype == pl.Utf8 and column.len() > 32 and column.n_unique() * 4 <= column.len():
            levels = column.unique(maintain_order=True).drop_nulls()
            codes = column.replace_strict(levels, pl.Series(range(levels.len())), default=None,
                                          return_dtype=pl.Int32)
            out[name] = {"levels": levels.to_list(), "codes": codes.to_list()}
        else:
            out[name] = column.to_list()
    return out


def _csv_links(fig: Figure) -> str:
    """One download link per dataset the figure draws (filled with a Blob on click)."""
    links = " ".join(f'<a href="#" data-csv="{html.escape(name)}" download="{html.escape(fig.id)}-'
                     f'{html.escape(name)}.csv">{html.escape(name)}.csv</a>' for name in fig.datasets)
    return f'<div class="csv">Data as CSV: {links}</div>' if links else ""


def _figure_html(fig: Figure) -> str:
    return (f'<figure id="{fig.id}-figure"><h3>{html.escape(fig.title)}</h3>'
            f'<div class="chart" id="{fig.id}"></div>'
            f"<figcaption>{html.escape(fig.caption)}</figcaption>{_csv_links(fig)}</figure>")


def build_page(model: str, sections: list[Section], datasets: dict[str, pl.DataFrame],
               generated_at: datetime | None = None, header: str = "") -> str:
    """The full HTML document as a string; `header` is extra (escaped) HTML under the title."""
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in sections)
    body, figures = [], []
    for section in sections:
        parts = []
        for part in section.parts:
            if isinstance(part, Figure):
                parts.append(_figure_html(part))
                figures.append({"id": part.id, "spec": part.chart.to_dict(), "datasets": list(part.datasets)})
            else:
                parts.append(part)
        body.append(f'<section id="{section.id}"><h2>{html.escape(section.title)}</h2>{"".join(parts)}</section>')
    data = {name: _columns(frame) for name, frame in datasets.items()}
    title = f"actstore report: {model}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLESHEET}</style>
<script>
// Vega, Vega-Lite {vegalite_version()} and Vega-Embed, inlined by vl-convert (no network needed).
{vega_bundle()}
</script>
</head>
<body>
<header><h1>{html.escape(title)}</h1>
<div class="meta">Generated {when} by actstore. Charts are interactive: use the selectors above each chart; hover for values; each figure's data downloads as CSV below it.</div>
{header}</header>
<main>
<nav class="toc"><strong>Contents</strong><ol>{toc}</ol></nav>
{"".join(body)}
</main>
<script>
const ACTSTORE_DATA = {script_json(data)};
const ACTSTORE_FIGURES = {script_json(figures)};
const ACTSTORE_EMBED_OPTIONS = {script_json(EMBED_OPTIONS)};
{CSV_SCRIPT}
{EMBED_SCRIPT}
</script>
</body>
</html>
"""
