"""Opens an HTML page in headless Chromium and reports whether it rendered cleanly: every image
loaded (complete, with a non-zero natural size) and no console errors or uncaught exceptions;
optionally a full-page PNG screenshot.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so nothing beyond the Debian
``chromium`` package is needed: no driver, no network port.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ENV_BINARY = "TFCOURSE_CHROMIUM"
_IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({
  alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"""


def find_chromium() -> Optional[str]:
    """The Chromium executable (``$TFCOURSE_CHROMIUM`` or the first of ``CANDIDATES`` on PATH), or None."""
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        return explicit if shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _Pipe:
    """The DevTools protocol over Chromium's fds 3 (commands in) and 4 (replies and events out)."""

    def __init__(self, binary: str, profile: str):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # the child's ends must become exactly fds 3 and 4; park them above 10 first so dup2 cannot clobber
        child_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire():  # in the child, before exec: fds 3 and 4 (inheritable) are the only ones passed on
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        args = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-extensions",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=wire,
                                        # close_fds would close 3 and 4 after wire(); Python's own fds are
                                        # non-inheritable (PEP 446), so nothing else leaks into Chromium
                                        close_fds=False)
        os.close(child_in)
        os.close(child_out)
        self.write_fd, self.read_fd = to_chrome_w, from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.events: List[Dict[str, Any]] = []

    def send(self, method: str, params: Optional[dict] = None, session: Optional[str] = None,
             timeout: float = 60.0) -> Dict[str, Any]:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"Chromium {method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60.0) -> Dict[str, Any]:
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        while True:
            event = self._receive(timeout)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def _receive(self, timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time.")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium exited unexpectedly.")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001  (already gone is fine)
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self.write_fd)
        os.close(self.read_fd)


def check_page(path: str, screenshot: Optional[str] = None, width: int = 1200, timeout: float = 60.0) -> Dict[str, Any]:
    """Loads ``path`` in headless Chromium and inspects it.

    Args:
        path: An HTML file.
        screenshot: Write a full-page PNG here (written atomically).
        width: Viewport width in CSS pixels.

    Returns:
        ``ok`` (bool), ``images`` and ``images_loaded`` (counts), ``broken`` (alt texts of images that
        did not load), ``errors`` (console errors and uncaught exceptions), ``problems`` (sentences)
        and ``title``.

    Raises:
        ValueError: If Chromium is not installed or the file does not exist.
    """
    binary = find_chromium()
    if binary is None:
        raise ValueError("headless Chromium was not found; install it (Debian: apt-get install chromium) or set "
                         f"{ENV_BINARY} to its executable.")
    if not os.path.isfile(path):
        raise ValueError(f"No such page: {path}.")
    profile = tempfile.mkdtemp(prefix="tfcourse-chromium-")
    pipe = _Pipe(binary, profile)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        pipe.send("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session=session)
        pipe.wait_for("Page.loadEventFired", timeout=timeout)
        images = json.loads(pipe.send("Runtime.evaluate", {"expression": _IMAGES_JS, "returnByValue": True},
                                      session=session)["result"]["value"])
        title = pipe.send("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                          session=session)["result"]["value"]
        if screenshot:
            size = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
            shot = pipe.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
                session=session, timeout=timeout)
            staging = f"{screenshot}.tmp-{os.getpid()}"
            with open(staging, "wb") as handle:
                handle.write(base64.b64decode(shot["data"]))
            os.replace(staging, screenshot)
        errors = []
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                errors.append("exception: " + params.get("exceptionDetails", {}).get("text", ""))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    finally:
        pipe.close()
        shutil.rmtree(profile, ignore_errors=True)
    broken = [image["alt"] or "(no alt)" for image in images if not image["complete"] or image["width"] == 0]
    problems = [f"image not loaded: {alt}" for alt in broken] + errors
    if not images:
        problems.append("the page has no images")
    return {"ok": not problems, "images": len(images), "images_loaded": len(images) - len(broken), "broken": broken,
            "errors": errors, "problems": problems, "title": title}
