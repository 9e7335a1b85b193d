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
