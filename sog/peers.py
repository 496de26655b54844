"""The browser peers sog drives, and where they are found: the pinned PlayCanvas engine file and Chromium.

One finder each, used by `sog view` / `sog export-html` (`sog.viewer`), the engine renderer
(`sog.render.engine`), the tests and the scripts.

The engine is never committed: ``package.json`` pins npm ``playcanvas`` (`ENGINE_VERSION`), ``npm ci`` puts it
in ``node_modules/``, and `find_playcanvas` accepts only that version's ``build/playcanvas.mjs`` (its SHA-384 is
`ENGINE_SRI`, the hash the viewer page's import map also checks the CDN copy against).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from pathlib import Path

ENGINE_VERSION = "2.23.3"
#: SHA-384 of build/playcanvas.mjs of npm playcanvas 2.23.3 (``openssl dgst -sha384 -binary | base64``)
ENGINE_SRI = "sha384-AJd06mp5ekLJ2FTKWPzCA37wb6hbsREh/Et8DrVWNawytRdQEZALFopUsH/SxOCs"
ENGINE_FILE = Path("node_modules") / "playcanvas" / "build" / "playcanvas.mjs"

DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: headless Chromium with WebGL 2 through SwiftShader (no GPU needed)
CHROMIUM_ARGS = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox")


def sri(data: bytes) -> str:
    """The subresource-integrity string (``sha384-...``) of ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def find_playcanvas(start: str | os.PathLike | None = None) -> Path | None:
    """``node_modules/playcanvas/build/playcanvas.mjs`` of the pinned version, looked for in ``$SOG_PLAYCANVAS`` (a
    file), then in ``start`` (default: the working directory) and its parents, then above this package; None when
    there is none or it is another version (its hash differs from `ENGINE_SRI`)."""
    candidates = []
    if os.environ.get("SOG_PLAYCANVAS"):
        candidates.append(Path(os.environ["SOG_PLAYCANVAS"]))
    for base in (Path(start or os.getcwd()).resolve(), Path(__file__).resolve().parent):
        candidates += [folder / ENGINE_FILE for folder in (base, *base.parents)]
    for path in candidates:
        if path.is_file() and sri(path.read_bytes()) == ENGINE_SRI:
            return path
    return None


def find_chromium(browser: str | None = None) -> str | None:
    """The Chromium executable (``browser``, ``$SOG_CHROMIUM``, /usr/bin/chromium, ``chromium`` on PATH) or None."""
    for cand in (browser, os.environ.get("SOG_CHROMIUM"), DEFAULT_CHROMIUM):
        if cand and Path(cand).is_file():
            return str(cand)
    return shutil.which("chromium") or shutil.which("chromium-browser")
