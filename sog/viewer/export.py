"""`sog export-html`: a folder that any static web host serves: the viewer page, its modules and the scene."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import SogError
from ..io.atomic import atomic_path, check_destination
from .engine import EngineSource, cdn_engine, find_local_engine
from .page import STATIC, STATIC_FILES, page_html
from .scenes import prepare_scene


def export_html(source: str | os.PathLike, out_dir: str | os.PathLike, *, local_engine: bool = False,
                overwrite: bool = False, up=(0.0, -1.0, 0.0)) -> dict:
    """Write ``out_dir``/ (``index.html``, the page's modules, ``scene.sog`` or ``scene.sograw``) for ``source``.

    A ``.sog`` is copied as it is (a SOG folder is bundled into one stored zip), other formats are converted to
    sog's raw float file (`sog.viewer.raw`). The page imports the engine from the pinned CDN URL with its
    integrity hash, or with ``local_engine`` from a copy of the local ``playcanvas.mjs`` next to it (offline use;
    needs ``npm ci``). Returns ``{"out_dir", "files", "bytes", "scene"}``. All or nothing: the folder appears
    complete or not at all."""
    check_destination(out_dir, [source], overwrite)  # before any work: never onto its own input
    scene = prepare_scene(source)
    engine, engine_file = cdn_engine(), None
    if local_engine:
        engine_file = find_local_engine()
        if engine_file is None:
            raise SogError("--local-engine: no node_modules/playcanvas/build/playcanvas.mjs of the pinned version "
                           "found (run `npm ci` in the project folder, or set SOG_PLAYCANVAS to the file)")
        engine = EngineSource("./playcanvas.mjs")
    out_dir = Path(out_dir)
    scene_name = "scene" + scene.extension
    config = {"scenes": [scene.info(scene_name)], "up": list(up), "size": None, "error": None}
    with atomic_path(out_dir, overwrite, directory=True) as tmp:
        (tmp / "index.html").write_text(page_html(config, engine))
        for name in STATIC_FILES[1:]:
            shutil.copyfile(STATIC / name, tmp / name)
        (tmp / scene_name).write_bytes(scene.data)
        if engine_file is not None:
            shutil.copyfile(engine_file, tmp / "playcanvas.mjs")
    files = sorted(p.name for p in out_dir.iterdir())
    return {"out_dir": str(out_dir), "files": files, "bytes": sum((out_dir / f).stat().st_size for f in files),
            "scene": scene.info(scene_name)}
