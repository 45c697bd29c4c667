"""EvalHub's callback route for one unit, on a loopback port for the unit's lifetime.

An SDK adapter's `DefaultCallbacks` POSTs its status events and results here; the replies are the
real server's (core/sdk_events.answer). Only the events route exists: anything else is a 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from evalhub.core.sdk_events import EVENTS_ROUTE, Answer, Session, Target

MAX_BODY = 16 * 1024 * 1024  # results with cards are a few kB; anything this large is wrong


class CallbackRoute:
    """The session of one unit, shared between the server's threads and the unit's watcher."""

    def __init__(self, target: Target) -> None:
        self.session = Session(target)
        self.lock = threading.Lock()
        self._seen = 0  # accepted events handed out by `new_events`

    def post(self, path: str, raw: bytes) -> Answer:
        match = EVENTS_ROUTE.match(path)
        if match is None:
            return Answer(404, "resource_not_found", f"no route {path}")
        with self.lock:
            return self.session.post(match["job"], raw)

    def new_events(self) -> list[dict[str, Any]]:
        """Accepted events not handed out before (progress for the display)."""
        with self.lock:
            events = self.session.events[self._seen :]
            self._seen = len(self.session.events)
            return list(events)


def _handler(route: CallbackRoute) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # the session keeps every request
            pass

        def _reply(self, answer: Answer) -> None:
            body = answer.body()
            self.send_response(answer.status)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                too_large = "bad or too large Content-Length"
                self._reply(Answer(400, "request_validation_failed", too_large))
                return
            self._reply(route.post(self.path, self.rfile.read(length)))

        def do_GET(self) -> None:
            self._reply(Answer(404, "resource_not_found", f"no route {self.path}"))

    return Handler


@contextmanager
def serve(target: Target) -> Iterator[tuple[str, CallbackRoute]]:
    """Serve the callback route on 127.0.0.1 (a free port) until the block ends: yields the
    callback URL and the route holding the session."""
    route = CallbackRoute(target)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(route))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sdk-callbacks", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", route
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
