"""A minimal Chrome DevTools Protocol driver for the UI tests: headless Chromium, pages we can type into, click,
read and screenshot — the browser a person uses, driven over the DevTools websocket on 127.0.0.1."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

# Headless, sandbox and GPU off (containers), and none of the browser's own calls home.
QUIET_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FLAGS = ["--headless=new", *QUIET_FLAGS, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


class Page:
    """One tab: ``evaluate`` JavaScript, ``wait_for`` a condition, ``screenshot``."""

    def __init__(self, ws_url: str, width: int, height: int) -> None:
        from websockets.sync.client import connect

        self._ws = connect(ws_url, max_size=64 * 2**20, open_timeout=30)
        self._ids = itertools.count(1)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Emulation.setFocusEmulationEnabled", enabled=True)  # every tab behaves as the focused one

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=120))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 120.0) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for: {expression}")

    def screenshot(self, path: Path) -> Path:
        # Headless Chromium paints only the front tab; a background tab's capture waits for a frame forever.
        self.call("Page.bringToFront")
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._ws.close()


class Browser:
    """Headless Chromium with its DevTools endpoint on 127.0.0.1; ``open(url)`` gives a :class:`Page`."""

    def __init__(self, profile_dir: Path) -> None:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            pytest.skip("chromium is not installed (make test installs it: make browser)")
        profile_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.time() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            assert self.proc.poll() is None and time.time() < deadline, "chromium did not start"
            time.sleep(0.1)
        self.endpoint = f"http://127.0.0.1:{port_file.read_text().split()[0]}"
        self.pages: list[Page] = []

    def open(self, url: str, width: int = 1400, height: int = 1000) -> Page:
        target = httpx.put(f"{self.endpoint}/json/new?{url}", timeout=30).json()
        page = Page(target["webSocketDebuggerUrl"], width, height)
        self.pages.append(page)
        return page

    def close(self) -> None:
        for page in self.pages:
            page.close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
