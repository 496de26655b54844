"""A small HTTP server on 127.0.0.1 that serves only what its ``lookup`` names: `sog view`'s page and the PlayCanvas
engine page of `sog.render.engine` both run on it.

``lookup(path)`` gets the request's path (query string cut, as sent: percent-escapes are the lookup's) and returns
``(content_type, bytes)`` or None (404). ``/favicon.ico`` is an empty 204 unless ``lookup`` serves it. GET and HEAD;
responses are never cached (``Cache-Control: no-store``); nothing is logged.

Hardened against other pages and clients on the same machine: a request whose ``Host`` is not
``127.0.0.1``, ``localhost`` or ``[::1]`` with this port is refused (421), so a site that rebinds its own name to
127.0.0.1 cannot read the scene; a path longer than `MAX_PATH` is 414; a connection idle for ``idle_timeout``
seconds is closed; at most ``max_connections`` are served at once (others are closed at once); `requests` keeps
only the last `KEPT_REQUESTS` paths that were served.
"""

from __future__ import annotations

import collections
import http.server
import socket
import threading
from typing import Callable

from .errors import SogError

Lookup = Callable[[str], "tuple[str, bytes] | None"]

#: the longest request path served (longer: 414)
MAX_PATH = 4096
#: how many served paths `LocalServer.requests` remembers
KEPT_REQUESTS = 256


class _BoundedServer(http.server.ThreadingHTTPServer):
    """A thread per connection, but at most ``max_connections`` of them: a connection beyond that is closed."""

    daemon_threads = True

    def __init__(self, address, handler, max_connections: int):
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class LocalServer:
    """A threaded HTTP server on 127.0.0.1:``port`` (0: a free port) answering from ``lookup``; `url` is its root,
    `requests` the paths asked for so far. Use as a context manager, or call `start` (a background thread) /
    `serve_forever` and `close`. ``idle_timeout``: seconds a connection may wait between requests (or within
    one); ``max_connections``: connections served at once."""

    def __init__(self, lookup: Lookup, port: int = 0, idle_timeout: float = 30.0, max_connections: int = 32):
        self.lookup = lookup
        self.requests: collections.deque[str] = collections.deque(maxlen=KEPT_REQUESTS)
        self.idle_timeout = idle_timeout
        try:
            self.httpd = _BoundedServer(("127.0.0.1", port), _handler(self), max_connections)
        except OSError as exc:
            raise SogError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); try another --port, "
                           "or --port 0 for any free one") from None
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
        timeout = server.idle_timeout  # socket timeout: an idle or half-sent request is dropped

        def do_GET(self):  # noqa: N802 (the stdlib's name)
            self._respond(body=True)

        def do_HEAD(self):  # noqa: N802
            self._respond(body=False)

        def _own_host(self) -> bool:
            host = (self.headers.get("Host") or "").strip().lower()
            return host in {f"{name}:{server.port}" for name in ("127.0.0.1", "localhost", "[::1]")}

        def _respond(self, body: bool) -> None:
            if not self._own_host():
                self.close_connection = True
                self.send_error(421, "not this server's host name")
                return
            if len(self.path) > MAX_PATH:
                self.close_connection = True
                self.send_error(414, "request path too long")
                return
            path = self.path.split("?", 1)[0]
            found = server.lookup(path)
            if found is not None or path == "/favicon.ico":
                server.requests.append(path)
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
