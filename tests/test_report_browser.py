"""Open a rendered report in headless Chromium: it loads offline, every chart draws, no console errors.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on
fd 3, replies on fd 4, NUL-separated JSON), so no port, websocket library or network is needed.
A screenshot of the whole page is saved to $ACTSTORE_SCREENSHOT_DIR (or a temporary directory)
and to /tmp/actstore-shots/ for a human to look at.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import _report_fixtures as fx
from reports import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps",
         "--no-default-browser-check", "--mute-audio", "--remote-debugging-pipe")


class Chromium:
    """A headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path, timeout: float = 45.0) -> None:
        self.timeout = timeout
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:  # runs in the child: fd 3 = commands in, fd 4 = replies out
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)
            for fd in (3, 4):  # dup2 onto itself keeps close-on-exec: clear it explicitly
                os.set_inheritable(fd, True)

        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            # close_fds would run after wire_fds and close 3 and 4; our own pipe ends are
            # close-on-exec (os.pipe), so nothing else of ours leaks into Chromium.
            preexec_fn=wire_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append(str(params["exceptionDetails"].get("exception", {}).get("description")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The full synthetic report opened in Chromium, all charts settled."""
    tmp = tmp_path_factory.mktemp("browser")
    report = render_report(fx.full_inputs(), tmp / "report.html")
    browser = Chromium(tmp / "profile")
    try:
        browser.open_page()
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        browser.send("Page.navigate", {"url": report.as_uri()})
        browser.wait_event("Page.loadEventFired")
        deadline = time.monotonic() + 40
        while browser.evaluate("document.body.dataset.charts") != "ready":
            assert time.monotonic() < deadline, "charts did not finish drawing within 40 s"
            time.sleep(0.2)
        yield browser, report
    finally:
        browser.close()


def test_page_has_no_console_errors(loaded):
    browser, _ = loaded
    assert browser.console_errors() == []


def test_page_requests_nothing_from_the_network(loaded):
    browser, report = loaded
    urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
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
    height = browser.send("Page.getLayoutMetrics")["cssContentSize"]["height"]
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1400, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
    shots = {"report-full": browser.send("Page.captureScreenshot", {"format": "png"})["data"]}
    boxes = json.loads(browser.evaluate("""JSON.stringify([...document.querySelectorAll('section')].map(s => {
        const r = s.getBoundingClientRect();
        return [s.id, r.x, r.y + window.scrollY, r.width, r.height]; }))"""))
    for name, x, y, width, box_height in boxes:
        clip = {"x": x, "y": y, "width": width, "height": box_height, "scale": 1}
        shots[f"section-{name}"] = browser.send("Page.captureScreenshot", {"format": "png", "clip": clip})["data"]
    targets = {Path(os.environ.get("ACTSTORE_SCREENSHOT_DIR", report.parent)), Path("/tmp/actstore-shots")}
    for name, data in shots.items():
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
        for directory in targets:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{name}.png").write_bytes(png)
