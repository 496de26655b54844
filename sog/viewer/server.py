"""`sog view`'s local web server: the page, its modules, the engine and the scenes, on 127.0.0.1 only.

Routes: ``/`` the page (`page.page_html`), ``/<module>.js`` and ``style.css`` the static files, ``/engine/
playcanvas.mjs`` the local engine (when there is one), ``/scene/<i>`` scene i's bytes (`scenes.Scene.data`).
Nothing else is served; there is no directory listing and no path outside these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..localserver import LocalServer
from .page import STATIC, STATIC_FILES, EngineSource, cdn_engine, page_html
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


class ViewerServer(LocalServer):
    """The server of one viewer page (`sog.localserver.LocalServer` over the routes above). ``port`` 0 picks a free
    port; `url` is the page's address.

    Use as a context manager, or call `start` (a background thread) / `serve_forever` and `close`."""

    def __init__(self, config: ViewerConfig, port: int = 0, engine_path: Path | None = None):
        self.config = config
        self.engine = EngineSource(LOCAL_ENGINE_URL) if engine_path else cdn_engine()
        self.engine_path = engine_path
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
        super().__init__(self._lookup, port)

    def _lookup(self, path: str) -> tuple[str, bytes] | None:
        route = self.routes.get(path)
        return None if route is None else (route[0], route[1]())
