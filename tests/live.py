"""Real services for end-to-end tests: the local model server, and a counting proxy in front
of it (so tests can say how many requests an apply made)."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "model_server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def model_server(command: str, port: int) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), command, "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"model_server.py {command} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def tokenizer_dir() -> Path:
    return Path(model_server("tokenizer", 0).splitlines()[-1])


@dataclass
class Counter:
    port: int  # the upstream model server
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def generations(self) -> int:
        return sum(1 for p in self.paths if not p.rstrip("/").endswith("/models"))


@contextmanager
def counting_proxy(upstream_port: int) -> Iterator[tuple[str, Counter]]:
    """Forward every request to the model server, counting them."""
    counter = Counter(upstream_port)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else None
            with counter.lock:
                counter.paths.append(self.path)
            upstream = http.client.HTTPConnection("127.0.0.1", counter.port, timeout=300)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
            except OSError:
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            finally:
                upstream.close()
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _forward
        do_POST = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", counter
    finally:
        server.shutdown()
        server.server_close()
