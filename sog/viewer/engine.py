"""Where the viewer page gets the PlayCanvas engine: a local copy from ``npm ci`` when there is one, else the
pinned CDN file, both checked against the same integrity hash.

The engine is never committed: ``package.json`` pins npm ``playcanvas`` (the version below), ``npm ci`` puts it
in ``node_modules/``, and `sog view` serves ``node_modules/playcanvas/build/playcanvas.mjs`` from there. Without
it the page imports the CDN copy of the very same file; the browser refuses it unless its SHA-384 matches
`ENGINE_SRI` (import-map ``integrity``, and a ``modulepreload`` link with it for browsers without that).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

ENGINE_VERSION = "2.23.3"
#: jsDelivr serves npm package files byte for byte
CDN_URL = f"https://cdn.jsdelivr.net/npm/playcanvas@{ENGINE_VERSION}/build/playcanvas.mjs"
#: SHA-384 of build/playcanvas.mjs of npm playcanvas 2.23.3 (``openssl dgst -sha384 -binary | base64``)
ENGINE_SRI = "sha384-AJd06mp5ekLJ2FTKWPzCA37wb6hbsREh/Et8DrVWNawytRdQEZALFopUsH/SxOCs"
ENGINE_FILE = Path("node_modules") / "playcanvas" / "build" / "playcanvas.mjs"


def sri(data: bytes) -> str:
    """The subresource-integrity string (``sha384-...``) of ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def find_local_engine(start: str | os.PathLike | None = None) -> Path | None:
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
