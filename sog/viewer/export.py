"""`sog export-html`: a folder that any static web host serves: the viewer page, its modules, the PlayCanvas engine
and the scene. It works offline: the engine is copied in from the local ``npm ci`` install (the pinned file,
`sog.peers`); only ``cdn_engine`` makes the page import it from the pinned CDN URL instead.

Every export folder holds ``sog-export.json`` (`MARKER`): with ``overwrite`` a later export may replace a folder
that holds only the files an export writes (`is_export_folder`), and nothing else."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..version import __version__
from ..errors import SogError
from ..io.atomic import atomic_path, check_destination, is_sog_folder
from ..peers import find_playcanvas
from .page import STATIC, STATIC_FILES, EngineSource, cdn_engine, page_html
from .scenes import prepare_scene

#: the file that marks a folder as `sog export-html`'s output
MARKER = "sog-export.json"
#: every file an export folder may hold
EXPORT_FILES = frozenset({*STATIC_FILES, "scene.sog", "scene.sograw", "playcanvas.mjs", MARKER})


def is_export_folder(folder: str | os.PathLike) -> bool:
    """True for a real folder of `sog export-html`: ``index.html``, ``viewer.js`` and otherwise only the files an
    export writes (`EXPORT_FILES`; plain files, no links or subfolders). Folders exported before `MARKER` existed
    are recognised by the same rule."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    names = {e.name for e in entries}
    return (all(e.is_file(follow_symlinks=False) for e in entries) and names <= EXPORT_FILES
            and {"index.html", "viewer.js"} <= names)


def _replaceable(folder: Path) -> bool:
    return is_export_folder(folder) or is_sog_folder(folder)


def export_html(source: str | os.PathLike, out_dir: str | os.PathLike, *, cdn_engine: bool = False,
                overwrite: bool = False, up=(0.0, -1.0, 0.0), local_engine: bool | None = None) -> dict:
    """Write ``out_dir``/ (``index.html``, the page's modules, ``playcanvas.mjs``, ``scene.sog`` or ``scene.sograw``,
    `MARKER`) for ``source``.

    A ``.sog`` is copied as it is (a SOG folder is bundled into one stored zip), other formats are converted to
    sog's raw float file (`sog.viewer.raw`). The engine is a copy of the local ``playcanvas.mjs`` (``npm ci``; a
    `SogError` says how to get it when there is none), so the page works offline; with ``cdn_engine`` the page
    imports it from the pinned CDN URL with its integrity hash instead. ``local_engine`` is accepted for old
    callers (True is the default; False means ``cdn_engine``). ``overwrite`` replaces an earlier export folder or a
    SOG folder, nothing else. Returns ``{"out_dir", "files", "bytes", "scene"}``. All or nothing: the folder
    appears complete or not at all."""
    if local_engine is False:
        cdn_engine = True
    check_destination(out_dir, [source], overwrite, _replaceable)  # before any work: never onto its own input
    engine, engine_file = _engine(cdn_engine)
    scene = prepare_scene(source)
    out_dir = Path(out_dir)
    scene_name = "scene" + scene.extension
    config = {"scenes": [scene.info(scene_name)], "up": list(up), "size": None, "error": None}
    marker = {"written_by": f"sog {__version__} export-html", "scene": scene_name,
              "engine": "cdn" if engine_file is None else "local"}
    with atomic_path(out_dir, overwrite, directory=True, folder_ok=_replaceable) as tmp:
        (tmp / "index.html").write_text(page_html(config, engine))
        for name in STATIC_FILES[1:]:
            shutil.copyfile(STATIC / name, tmp / name)
        (tmp / scene_name).write_bytes(scene.data)
        if engine_file is not None:
            shutil.copyfile(engine_file, tmp / "playcanvas.mjs")
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    files = sorted(p.name for p in out_dir.iterdir())
    return {"out_dir": str(out_dir), "files": files, "bytes": sum((out_dir / f).stat().st_size for f in files),
            "scene": scene.info(scene_name)}


def _engine(cdn: bool) -> tuple[EngineSource, Path | None]:
    if cdn:
        return cdn_engine(), None
    engine_file = find_playcanvas()
    if engine_file is None:
        raise SogError("no local PlayCanvas engine to copy into the folder (node_modules/playcanvas/build/"
                       "playcanvas.mjs of the pinned version): run `npm ci` in the project folder or set "
                       "SOG_PLAYCANVAS to the file; or pass --cdn-engine for a page that loads it from the CDN "
                       "(it then needs a network connection)")
    return EngineSource("./playcanvas.mjs"), engine_file
