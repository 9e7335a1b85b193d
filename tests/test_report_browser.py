"""Open a rendered report in headless Chromium: it loads offline, every chart draws, no console errors.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on
fd 3, replies on fd 4, NUL-separated JSON), so no port, websocket library or network is needed.
A screenshot of the whole page is saved to the test's temporary directory, or to
$ACTSTORE_SCREENSHOT_DIR when a human wants to look at it (the suite writes nowhere else).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import _report_fixtures as fx
from actstore.reports import render_report

from _chromium import CHROMIUM, open_report, screenshots

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The full synthetic report opened in Chromium, all charts settled."""
    tmp = tmp_path_factory.mktemp("browser")
    report = render_report(fx.full_inputs(), tmp / "report.html")
    browser = open_report(report, tmp / "profile")
    try:
        yield browser, report
    finally:
        browser.close()


def test_page_has_no_console_errors(loaded):
    browser, _ = loaded
    assert browser.console_errors() == []


def test_page_requests_nothing_from_the_network(loaded):
    browser, report = loaded
    urls = browser.requests
    assert report.as_uri() in urls
    assert [u for u in urls if not u.startswith(("file:", "data:", "about:", "blob:"))] == []


def test_every_chart_div_draws(loaded):
    browser, _ = loaded
    charts = browser.evaluate("""JSON.stringify([...document.querySelectorAll('div.chart')].map(d => ({
        id: d.id, drawn: !!d.querySelector('svg, canvas'), error: d.classList.contains('chart-error'),
        section: d.closest('section').id})))""")
    charts = json.loads(charts)
    sections = {c["section"] for c in charts}
    assert {"cross-modal", "cross-lingual", "retrieval", "tsne", "neurons"} <= sections
    assert [c["id"] for c in charts] == [
        "fig-cm-lines", "fig-cm-langs", "fig-xl-heatmaps", "fig-xl-deltas", "fig-xl-means",
        "fig-ret-heatmaps", "fig-tsne", "fig-neu-top", "fig-neu-best", "fig-neu-overlap", "fig-neu-gini"]
    assert [c["id"] for c in charts if not c["drawn"] or c["error"]] == []


def test_delta_heatmap_shows_last_minus_first(loaded):
    """The browser-computed delta equals score(L24) - score(embed) of the fixture, for every pair."""
    browser, _ = loaded
    cells = json.loads(browser.evaluate("""(() => {
        const out = [];
        function walk(node) {
          if (!node) return;
          if (node.marktype === 'rect') {
            for (const item of node.items || []) {
              if (item.datum && item.datum.delta !== undefined) out.push(item.datum);
            }
          }
          for (const item of node.items || []) if (item.items) for (const child of item.items) walk(child);
        }
        walk(window.actstoreViews['fig-xl-deltas'].scenegraph().root);
        return JSON.stringify(out.map(d => [d.kind, d.lang_a, d.lang_b, d.delta]));
    })()"""))
    last = len(fx.DEPTHS) - 1
    expected = {}
    for kind in fx.KIND_OFFSET:
        for i, a in enumerate(fx.LANGS):
            for j, b in enumerate(fx.LANGS):
                if kind != "speech-text" and j >= i:
                    continue
                expected[(kind, a, b)] = (fx.cross_lingual_score(kind, i, j, last)
                                          - fx.cross_lingual_score(kind, i, j, 0))
    got = {(k, a, b): v for k, a, b, v in cells}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=2e-4), key  # scores are rounded to 4 digits


LEGEND_LABELS = """(async () => {
    const v = window.actstoreViews['fig-tsne'];
    await v.signal('tsne_colour', '%s').signal('tsne_depth', '%s').runAsync();
    const labels = [];
    (function walk(node) {
      if (!node) return;
      if (node.role === 'legend-label') for (const it of node.items || []) labels.push(it.text);
      for (const it of node.items || []) if (it.items) for (const c of it.items) walk(c);
    })(v.scenegraph().root);
    return JSON.stringify(labels);
})()"""


def test_tsne_colour_toggle_switches_legend(loaded):
    """Colour by modality: the legends list only speech/text; back to language: all six languages."""
    browser, _ = loaded
    by_modality = json.loads(browser.evaluate(LEGEND_LABELS % ("modality", "embed"), await_promise=True))
    by_language = json.loads(browser.evaluate(LEGEND_LABELS % ("lang", "L24"), await_promise=True))
    assert set(by_modality) == {"speech", "text"}
    assert set(fx.LANGS) <= set(by_language)
    assert browser.console_errors() == []


def test_screenshot_is_saved(loaded):
    """A full-page PNG plus one PNG per section (easier to read) land in the screenshot folders."""
    browser, report = loaded
    targets = {Path(os.environ.get("ACTSTORE_SCREENSHOT_DIR", report.parent))}
    for name, png in screenshots(browser).items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
        for directory in targets:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{name}.png").write_bytes(png)


# ---------------------------------------------------------- issue 15 §6: the report explains itself
import _report_wide as wide

#: per chart, per panel (a group whose own children are data marks): how many marks it drew
PANEL_MARKS = """JSON.stringify(Object.fromEntries(Object.entries(window.actstoreViews).map(([id, view]) => {
    const panels = [];
    (function walk(node, path) {
      if (!node) return;
      for (const item of node.items || []) {
        const own = (item.items || []).filter(c => c.role === 'mark' && c.marktype !== 'group');
        if (own.length) panels.push([path + '/' + (item.name || node.name || ''),
                                     own.reduce((s, c) => s + (c.items || []).length, 0)]);
        for (const child of item.items || []) walk(child, path + '/' + (child.name || ''));
      }
    })(view.scenegraph().root, id);
    return [id, panels];
})))"""


def _panel_counts(browser) -> dict[str, list[int]]:
    panels = json.loads(browser.evaluate(PANEL_MARKS))
    return {fig: [n for _, n in cells] for fig, cells in panels.items()}


def test_no_panel_is_empty_on_first_open_small(loaded):
    browser, _ = loaded
    counts = _panel_counts(browser)
    assert len(counts) == 11 and all(counts.values())
    assert {fig: c for fig, c in counts.items() if 0 in c} == {}


def test_csv_link_downloads_the_figure_data(loaded):
    browser, _ = loaded
    got = json.loads(browser.evaluate("""(async () => {
        const link = document.querySelector('#fig-cm-langs-figure a[data-csv]');
        document.addEventListener('click', e => e.preventDefault(), {once: true});
        link.click();
        const text = await (await fetch(link.href)).text();
        return JSON.stringify([link.href.slice(0, 5), link.dataset.csv, text.split('\\r\\n').slice(0, 2)]);
    })()"""))
    assert got[0] == "blob:" and got[1] == "cm_rows"
    header, first = got[2]
    assert header.split(",")[:4] == ["depth", "point_order", "lang", "resource_level_a"]
    assert first.split(",")[:3] == ["embed", "0", "eng"]  # rows as embedded: first depth, first language


@pytest.fixture(scope="module")
def wide_loaded(loaded, tmp_path_factory):
    """The 36-language report with a speech-only last depth, in the same browser (Playwright's sync
    API runs one instance per thread); the tests above use the small report before it navigates."""
    browser, _ = loaded
    report = render_report(wide.wide_inputs(), tmp_path_factory.mktemp("wide") / "report.html")
    browser.page.goto(report.as_uri(), wait_until="load")
    browser.page.wait_for_function("document.body.dataset.charts === 'ready'", timeout=40_000, polling=200)
    return browser, report


def test_no_panel_is_empty_on_first_open(wide_loaded):
    """Every panel of every chart draws marks as the page opens (the wide report's last depth has
    speech only: a report opening there would leave the text panels empty)."""
    browser, _ = wide_loaded
    panels = json.loads(browser.evaluate(PANEL_MARKS))
    assert len(panels) == 11
    counts = {fig: [n for _, n in cells] for fig, cells in panels.items()}
    assert all(counts.values()), counts  # every chart has panels
    assert {fig: c for fig, c in counts.items() if 0 in c} == {}
    assert len(counts["fig-xl-heatmaps"]) == 3 and len(counts["fig-ret-heatmaps"]) == 4
    assert browser.console_errors() == []


def test_heatmaps_fit_within_1200_px(wide_loaded):
    browser, _ = wide_loaded
    widths = json.loads(browser.evaluate("""JSON.stringify(Object.fromEntries([...document.querySelectorAll(
        'div.chart')].map(d => [d.id, d.querySelector('canvas').getBoundingClientRect().width])))"""))
    heatmaps = {k: v for k, v in widths.items() if k in ("fig-cm-langs", "fig-xl-heatmaps", "fig-xl-deltas",
                                                         "fig-ret-heatmaps", "fig-neu-top")}
    assert len(heatmaps) == 5 and max(heatmaps.values()) <= 1200, heatmaps
    assert widths["fig-xl-heatmaps"] >= 900  # 36 languages use the width: two ~430 px panels a row
    assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_highlighting_a_language_draws_it_thick_and_labelled(wide_loaded):
    browser, _ = wide_loaded
    labels = json.loads(browser.evaluate("""(async () => {
        const v = window.actstoreViews['fig-neu-gini'];
        const texts = () => { const out = [];
          (function walk(n) { if (!n) return; if (n.marktype === 'text' && n.role === 'mark')
              for (const it of n.items || []) out.push(it.text);
            for (const it of n.items || []) if (it.items) for (const c of it.items) walk(c); })(v.scenegraph().root);
          return out; };
        const before = texts();
        await v.signal('neu_gini_lang', 'eng').runAsync();
        const after = texts();
        await v.signal('neu_gini_lang', '').runAsync();
        return JSON.stringify([before, after]);
    })()"""))
    assert labels[0] == [] and set(labels[1]) == {"eng"}

