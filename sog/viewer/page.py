"""The viewer page's HTML: ``static/index.html`` with the engine's import map and the page's configuration.

Where the page gets the PlayCanvas engine: the local copy from ``npm ci`` when there is one (`sog.peers`, served
by `sog view`), else the pinned CDN file; the browser refuses either unless its SHA-384 matches
`sog.peers.ENGINE_SRI` (import-map ``integrity``, and a ``modulepreload`` link with it for browsers without that).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..peers import ENGINE_SRI, ENGINE_VERSION

STATIC = Path(__file__).parent / "static"
#: the files of the page (served by `sog view`, copied by `sog export-html`)
STATIC_FILES = ("index.html", "viewer.js", "sog-decoder.js", "splat-data.js", "controls.js", "style.css")
#: jsDelivr serves npm package files byte for byte
CDN_URL = f"https://cdn.jsdelivr.net/npm/playcanvas@{ENGINE_VERSION}/build/playcanvas.mjs"


@dataclass
class EngineSource:
    """The engine URL the page imports and the integrity hash the browser checks it against."""

    url: str
    integrity: str = ENGINE_SRI

    def head_html(self) -> str:
        """The ``<script type="importmap">`` and ``<link rel="modulepreload">`` that make ``import 'playcanvas'``
        load this URL only if its hash matches."""
        importmap = {"imports": {"playcanvas": self.url}, "integrity": {self.url: self.integrity}}
        return (f'<script type="importmap">{json.dumps(importmap)}</script>\n'
                f'<link rel="modulepreload" href="{self.url}" integrity="{self.integrity}" crossorigin="anonymous">')


def cdn_engine() -> EngineSource:
    return EngineSource(CDN_URL)


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
