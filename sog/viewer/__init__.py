"""`sog view` and `sog export-html`: look at any scene sog reads in the browser, one or two side by side.

The page (``static/``: our own ES modules, no build step) decodes ``.sog`` files itself (`static/sog-decoder.js`:
the native profile, layered or not, and SOG v2), gets other formats as raw floats from the server
(`sog.viewer.raw`), and renders with the PlayCanvas engine (npm ``playcanvas``, pinned; `sog.peers`, `sog.viewer.page`).

* `view`: a local server on 127.0.0.1 (`sog.viewer.server`) and the browser pointed at it.
* `export_html`: the same page and the scene in a folder for a static web host (`sog.viewer.export`).
"""

from __future__ import annotations

import os
import sys
import time
import webbrowser

from ..errors import SogError
from .export import export_html
from .scenes import Scene, prepare_scene
from .server import ViewerConfig, ViewerServer

__all__ = ["view", "export_html", "prepare_scene", "Scene", "ViewerConfig", "ViewerServer", "up_vector"]


def up_vector(name: str) -> tuple[float, float, float]:
    """``"-y"`` (the default of `sog eval`), ``"+z"``, ... as a unit vector."""
    from ..render.cameras import UP_AXES

    if name not in UP_AXES:
        raise SogError(f"--up must be one of {', '.join(UP_AXES)}, not {name!r}")
    return UP_AXES[name]


def view(paths: list[str | os.PathLike], port: int = 8765, open_browser: bool = True, up: str = "-y",
         size: tuple[int, int] | None = None, quiet: bool = False, error_wait_s: float = 20.0) -> int:
    """Serve the viewer page for one or two scenes until interrupted; returns the exit code.

    Every file is loaded with `sog.load` first. A file that cannot be read is reported as ``sog: error: ...`` on
    stderr and, when a browser is opened, on the page too (served until the page has loaded or ``error_wait_s``
    passed); the return value is then 2 and nothing is left running."""
    from ..peers import find_playcanvas

    if not 1 <= len(paths) <= 2:
        raise SogError("sog view shows one or two scenes")
    config = ViewerConfig(up=up_vector(up), size=size)
    try:
        config.scenes = [prepare_scene(p) for p in paths]
    except SogError as exc:
        print(f"sog: error: {exc}", file=sys.stderr)
        if open_browser:
            config.scenes, config.error = [], str(exc)
            with ViewerServer(config, port, find_playcanvas()) as server:
                webbrowser.open(server.url)
                deadline = time.monotonic() + error_wait_s
                while "/viewer.js" not in server.requests and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(0.5)
        return 2
    engine = find_playcanvas()
    with ViewerServer(config, port, engine) as server:
        if not quiet:
            for s in config.scenes:
                print(f"{s.name}: {s.format}{' (' + s.profile + ')' if s.profile else ''}, {s.count:,} Gaussians, "
                      f"SH degree {s.sh_degree}, {s.bytes:,} bytes, {8 * s.bytes / s.count:.2f} bits/Gaussian")
            print(f"engine: {'local ' + str(engine) if engine else server.engine.url}")
            print(f"sog view: {server.url}  (Ctrl-C stops)", flush=True)
        if open_browser:
            webbrowser.open(server.url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            if not quiet:
                print("sog view: stopped", file=sys.stderr)
    return 0
