"""Headless Chromium over the DevTools pipe, for tests that look at rendered reports.

`--remote-debugging-pipe`: commands on fd 3, replies on fd 4, NUL-separated JSON, so no port,
websocket library or network is needed.
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

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

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

        home = Path(profile) / "home"  # Chromium writes crash-report and dconf settings under HOME
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
               "XDG_CACHE_HOME": str(home / ".cache")}
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"], env=env,
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




def open_report(report: Path, profile: Path, *, width: int = 1400, wait_s: float = 40) -> Chromium:
    """Chromium with `report` loaded and every chart settled (the page sets data-charts=ready)."""
    browser = Chromium(profile)
    try:
        browser.open_page()
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        browser.send("Page.navigate", {"url": report.as_uri()})
        browser.wait_event("Page.loadEventFired")
        deadline = time.monotonic() + wait_s
        while browser.evaluate("document.body.dataset.charts") != "ready":
            if time.monotonic() > deadline:
                raise TimeoutError(f"charts did not finish drawing within {wait_s} s")
            time.sleep(0.2)
    except BaseException:
        browser.close()
        raise
    return browser


def chart_states(browser: Chromium) -> list[dict]:
    """Every chart div: id, whether it drew an svg/canvas, error flag, its section."""
    return json.loads(browser.evaluate("""JSON.stringify([...document.querySelectorAll('div.chart')].map(d => ({
        id: d.id, drawn: !!d.querySelector('svg, canvas'), error: d.classList.contains('chart-error'),
        section: d.closest('section').id})))"""))


def screenshots(browser: Chromium, width: int = 1400) -> dict[str, bytes]:
    """A full-page PNG and one PNG per section."""
    height = browser.send("Page.getLayoutMetrics")["cssContentSize"]["height"]
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
    shots = {"report-full": browser.send("Page.captureScreenshot", {"format": "png"})["data"]}
    boxes = json.loads(browser.evaluate("""JSON.stringify([...document.querySelectorAll('section')].map(s => {
        const r = s.getBoundingClientRect();
        return [s.id, r.x, r.y + window.scrollY, r.width, r.height]; }))"""))
    for name, x, y, w, h in boxes:
        clip = {"x": x, "y": y, "width": w, "height": h, "scale": 1}
        shots[f"section-{name}"] = browser.send("Page.captureScreenshot", {"format": "png", "clip": clip})["data"]
    return {name: base64.b64decode(data) for name, data in shots.items()}
