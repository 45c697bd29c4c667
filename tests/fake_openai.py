"""A small scripted OpenAI-compatible server for fast tests of error paths.

The end-to-end tests use the real model (tests/integration/test_e2e_model.py); this one answers in
microseconds and can fail on purpose: a status code, junk, a stall.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    """What the server does. `answer(prompt) -> text`; `faults` are consumed one per request
    (an int is an HTTP status, "junk" a non-JSON body, "stall" a 5 s sleep); `always` applies
    to every request once the faults are used up."""

    answer: Callable[[str], str] = lambda prompt: "You have 60 days to return an item."
    faults: list[int | str] = field(default_factory=list)
    always: int | str | None = None
    # A fault chosen per request from its body (after `faults` and `always` found none).
    fault_for: Callable[[dict[str, Any]], int | str | None] = lambda body: None
    # An endpoint that repeats the request's headers (Authorization included) in its error
    # bodies and its /models answer, as some gateways do.
    echo_headers: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def generations(self) -> int:
        return sum(1 for r in self.requests if r.get("path") != "/v1/models")


class _Handler(BaseHTTPRequestHandler):
    script: Script

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.script.lock:
            self.script.requests.append({"path": self.path})
        if self.path.rstrip("/") == "/v1/models":
            models: dict[str, Any] = {"object": "list", "data": [{"id": "fake-model"}]}
            if self.script.echo_headers:
                models["request_headers"] = dict(self.headers.items())
            self._send(200, json.dumps(models).encode())
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.script.lock:
            self.script.requests.append({"path": self.path, **body})
            self.script.headers.append(dict(self.headers.items()))
            fault = self.script.faults.pop(0) if self.script.faults else self.script.always
            if fault is None:
                fault = self.script.fault_for(body)
        if fault == "stall":
            time.sleep(5)
            fault = None
        if fault == "junk":
            self._send(200, b"<html>oops</html>", "text/html")
            return
        if isinstance(fault, int):
            message = "scripted"
            if self.script.echo_headers:
                message = f"invalid credentials: {self.headers.get('Authorization')}"
            self._send(fault, json.dumps({"error": {"message": message}}).encode())
            return
        if self.path.endswith("/chat/completions"):
            prompt = body["messages"][-1]["content"]
            text = self.script.answer(prompt)
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            text = self.script.answer(body.get("prompt", ""))
            choice = {"index": 0, "text": text}
        self._send(200, json.dumps({"id": "x", "object": "chat", "choices": [choice]}).encode())


@contextmanager
def fake_openai(script: Script | None = None) -> Iterator[tuple[str, Script]]:
    """Serve `script` on 127.0.0.1; yields (base URL ending in /v1, script)."""
    script = script or Script()
    handler = type("Handler", (_Handler,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", script
    finally:
        server.shutdown()
        server.server_close()
