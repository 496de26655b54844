"""The viewer page's HTML: ``static/index.html`` with the engine's import map and the page's configuration."""

from __future__ import annotations

import json
from pathlib import Path

from .engine import EngineSource

STATIC = Path(__file__).parent / "static"
#: the files of the page (served by `sog view`, copied by `sog export-html`)
STATIC_FILES = ("index.html", "viewer.js", "sog-decoder.js", "splat-data.js", "controls.js", "style.css")


def page_html(config: dict, engine: EngineSource) -> str:
    """``index.html`` with ``engine``'s import map and ``config`` (the scenes, up axis, size) filled in."""
    html = (STATIC / "index.html").read_text()
    text = json_for_script({**config, "engine_url": engine.url})
    return html.replace("<!--SOG_ENGINE-->", engine.head_html()).replace("<!--SOG_CONFIG-->", text)


def json_for_script(value) -> str:
    """``value`` as JSON that is inert inside a ``<script>`` element: ``<``, ``>`` and ``&`` are written as
    ``\\u003c``-style escapes (JSON.parse reads them back), so no text, a scene's file name included, can close the
    element, open a comment (``<!--``) or start another ``<script>``; non-ASCII is escaped too."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
