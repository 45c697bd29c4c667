"""A real headless Chromium (Debian `chromium`) driven over the DevTools protocol through
`--remote-debugging-pipe` (fd 3 in, fd 4 out, NUL-separated JSON): no websocket library, no
port. Used to open the HTML report the way a person does and record what the page asks the
network for and what it logs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Browser:
    proc: subprocess.Popen[bytes]
    to_browser: Any
    from_browser: Any
    session: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _next: int = 0
    _buffer: bytes = b""

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.from_browser.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        value: dict[str, Any] = json.loads(message)
        return value

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self._next += 1
        request: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            request["sessionId"] = self.session
        self.to_browser.write(json.dumps(request).encode() + b"\0")
        self.to_browser.flush()
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message = self._read(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message

    def evaluate(self, expression: str) -> Any:
        answer = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return answer["result"].get("value")

    def of(self, method: str) -> list[dict[str, Any]]:
        return [e.get("params", {}) for e in self.events if e.get("method") == method]


def _onto_3_and_4(read: int, write: int) -> None:
    """In the child: the pipe ends onto fds 3 and 4 (copied first, so that neither dup2
    closes the other end when one of them already sits on 3 or 4)."""
    a, b = os.dup(read), os.dup(write)
    os.dup2(a, 3)
    os.dup2(b, 4)


@contextmanager
def headless(profile: Path) -> Iterator[Browser]:
    """A headless Chromium with one page attached (its events recorded from the start)."""
    binary = chromium()
    assert binary is not None, "Debian's chromium is not installed (apt-get install chromium)"
    to_read, to_browser = os.pipe()  # the browser reads commands on its fd 3
    from_browser, to_write = os.pipe()  # and writes answers on its fd 4
    args = [
        binary,
        "--headless=new",
        "--remote-debugging-pipe",
        "--no-sandbox",  # CI containers run as root
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1400",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    proc = subprocess.Popen(
        args,
        pass_fds=(3, 4),
        preexec_fn=lambda: _onto_3_and_4(to_read, to_write),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_read)
    os.close(to_write)
    browser = Browser(proc, os.fdopen(to_browser, "wb"), os.fdopen(from_browser, "rb"))
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        attached = browser.send("Target.attachToTarget", targetId=target, flatten=True)
        browser.session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable")
        yield browser
    finally:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, ValueError):
            browser.send("Browser.close", timeout=5)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        browser.to_browser.close()
        browser.from_browser.close()
