"""A small HTTP server on 127.0.0.1 that serves only what its ``lookup`` names: `sog view`'s page and the PlayCanvas
engine page of `sog.render.engine` both run on it.

``lookup(path)`` gets the request's path (query string cut, as sent: percent-escapes are the lookup's) and returns
``(content_type, bytes)`` or None (404). ``/favicon.ico`` is an empty 204 unless ``lookup`` serves it. GET and HEAD;
responses are never cached (``Cache-Control: no-store``); nothing is logged.
"""

from __future__ import annotations

import http.server
import socket
import threading
from typing import Callable

from .errors import SogError

Lookup = Callable[[str], "tuple[str, bytes] | None"]


class LocalServer:
    """A threaded HTTP server on 127.0.0.1:``port`` (0: a free port) answering from ``lookup``; `url` is its root,
    `requests` the paths asked for so far. Use as a context manager, or call `start` (a background thread) /
    `serve_forever` and `close`."""

    def __init__(self, lookup: Lookup, port: int = 0):
        self.lookup = lookup
        self.requests: list[str] = []
        try:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        except OSError as exc:
            raise SogError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); try another --port, "
                           "or --port 0 for any free one") from None
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self.thread is not None:
            self.httpd.shutdown()
            self.thread.join()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _handler(server: LocalServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (the stdlib's name)
            self._respond(body=True)

        def do_HEAD(self):  # noqa: N802
            self._respond(body=False)

        def _respond(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            server.requests.append(path)
            found = server.lookup(path)
            if found is None and path == "/favicon.ico":
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if found is None:
                self.send_error(404, "not found")
                return
            content_type, data = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body:
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    pass

        def log_message(self, format, *args):  # quiet: the terminal shows the URL and errors only
            pass

    return Handler
