"""The demo pipeline end to end, looked at as a person would: ingest -> analyze -> report, then
the report opened in headless Chromium.

A small version of `make demo` (4 languages, 12 sentences, both demo models) so it runs in the
test suite; the page must load with no console errors and every chart section must draw.
Screenshots go to the test's tmp dir, or to $ACTSTORE_SCREENSHOT_DIR when set.
"""

from __future__ import annotations

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
