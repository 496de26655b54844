"""`sog view`'s local web server: the page, its modules, the engine and the scenes, on 127.0.0.1 only.

Routes: ``/`` the page (`page.page_html`), ``/<module>.js`` and ``style.css`` the static files, ``/engine/
playcanvas.mjs`` the local engine (when there is one), ``/scene/<i>`` scene i's bytes (`scenes.Scene.data`).
Nothing else is served; there is no directory listing and no path outside these.
"""

from __future__ import annotations

import http.server
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SogError
from .engine import EngineSource, cdn_engine
from .page import STATIC, STATIC_FILES, page_html
from .scenes import Scene

LOCAL_ENGINE_URL = "/engine/playcanvas.mjs"
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html"}


@dataclass
class ViewerConfig:
    """What the page shows: ``scenes`` (one or two), the scene's ``up`` axis (as `sog eval`: -y), a fixed canvas
    ``size`` (W, H) or None (fill the window), an ``error`` to show instead of scenes."""

    scenes: list[Scene] = field(default_factory=list)
    up: tuple[float, float, float] = (0.0, -1.0, 0.0)
    size: tuple[int, int] | None = None
    error: str | None = None

    def page_config(self, urls: list[str]) -> dict:
        return {"scenes": [s.info(u) for s, u in zip(self.scenes, urls)], "up": list(self.up),
                "size": list(self.size) if self.size else None, "error": self.error}


class ViewerServer:
    """A threaded HTTP server for one viewer page. ``port`` 0 picks a free port; `url` is the page's address.

    Use as a context manager, or call `start` (a background thread) / `serve_forever` and `close`."""

    def __init__(self, config: ViewerConfig, port: int = 0, engine_path: Path | None = None):
        self.config = config
        self.engine = EngineSource(LOCAL_ENGINE_URL) if engine_path else cdn_engine()
        self.engine_path = engine_path
        self.requests: list[str] = []
        urls = [f"/scene/{i}{s.extension}" for i, s in enumerate(config.scenes)]
        self.routes: dict[str, tuple[str, object]] = {
            "/": ("text/html; charset=utf-8", lambda: page_html(config.page_config(urls), self.engine).encode()),
        }
        for name in STATIC_FILES[1:]:
            self.routes["/" + name] = (TYPES[Path(name).suffix], (lambda n=name: (STATIC / n).read_bytes()))
        if engine_path:
            self.routes[LOCAL_ENGINE_URL] = ("text/javascript", lambda: engine_path.read_bytes())
        for url, scene in zip(urls, config.scenes):
            self.routes[url] = ("application/octet-stream", (lambda s=scene: s.data))
        handler = _handler(self)
        try:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise SogError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); try another --port, "
                           "or --port 0 for any free one") from None
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "ViewerServer":
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

    def __enter__(self) -> "ViewerServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _handler(server: ViewerServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (the stdlib's name)
            self._respond(body=True)

        def do_HEAD(self):  # noqa: N802
            self._respond(body=False)

        def _respond(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            server.requests.append(path)
            route = server.routes.get(path)
            if path == "/favicon.ico":
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route is None:
                self.send_error(404, "not found")
                return
            content_type, make = route
            data = make()
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
