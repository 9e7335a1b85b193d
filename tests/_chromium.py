"""Headless system Chromium driven by Playwright, for tests that look at rendered reports.

Playwright launches the machine's own Chromium (`executable_path`; Debian: `apt-get install
chromium`, as `make system-deps` does); it never downloads a browser of its own. The tests need
four things from the page: console errors, every URL it requested, script results and screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-dev-shm-usage", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--mute-audio")


class Browser:
    """One headless page of the system Chromium, recording console errors and requested URLs."""

    def __init__(self, profile: Path, width: int = 1400, timeout_s: float = 45.0) -> None:
        from playwright.sync_api import sync_playwright

        home = Path(profile) / "home"  # Chromium writes crash-report and dconf settings under HOME
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
               "XDG_CACHE_HOME": str(home / ".cache")}
        self._playwright = sync_playwright().start()
        try:
            self._context = self._playwright.chromium.launch_persistent_context(
                str(Path(profile) / "user-data"), executable_path=CHROMIUM, headless=True, args=list(ARGS),
                env=env, viewport={"width": width, "height": 1000}, device_scale_factor=1)
        except BaseException:
            self._playwright.stop()
            raise
        self._context.set_default_timeout(timeout_s * 1000)
        self.page = self._context.pages[0] if self._context.pages else self._context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "assert") else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} ({r.failure})"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def evaluate(self, expression: str, await_promise: bool = False):
        """The value of a page expression (a promise is awaited either way; the flag is kept for callers)."""
        return self.page.evaluate(expression)

    def console_errors(self) -> list[str]:
        return list(self.errors)

    def close(self) -> None:
        try:
            self._context.close()
        finally:
            self._playwright.stop()


def open_report(report: Path, profile: Path, *, width: int = 1400, wait_s: float = 40) -> Browser:
    """Chromium with `report` loaded and every chart settled (the page sets data-charts=ready)."""
    browser = Browser(profile, width=width)
    try:
        browser.page.goto(report.as_uri(), wait_until="load")
        browser.page.wait_for_function("document.body.dataset.charts === 'ready'", timeout=wait_s * 1000,
                                       polling=200)
    except BaseException:
        browser.close()
        raise
    return browser


def chart_states(browser: Browser) -> list[dict]:
    """Every chart div: id, whether it drew an svg/canvas, error flag, its section."""
    return json.loads(browser.evaluate("""JSON.stringify([...document.querySelectorAll('div.chart')].map(d => ({
        id: d.id, drawn: !!d.querySelector('svg, canvas'), error: d.classList.contains('chart-error'),
        section: d.closest('section').id})))"""))


def screenshots(browser: Browser, width: int = 1400) -> dict[str, bytes]:
    """A full-page PNG and one PNG per section (the viewport grown to the page, as a reader scrolls it)."""
    page = browser.page
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": width, "height": int(height)})
    shots = {"report-full": page.screenshot(type="png")}
    boxes = json.loads(page.evaluate("""JSON.stringify([...document.querySelectorAll('section')].map(s => {
        const r = s.getBoundingClientRect();
        return [s.id, r.x, r.y + window.scrollY, r.width, r.height]; }))"""))
    for name, x, y, w, h in boxes:
        shots[f"section-{name}"] = page.screenshot(type="png", clip={"x": x, "y": y, "width": w, "height": h})
    return shots
