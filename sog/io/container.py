"""The ``.sog`` container: a zip of ``meta.json`` plus image planes, or the same files in a folder.

The bundled form is an uncompressed (stored) zip, as PlayCanvas writes it: the planes are
already compressed images. ``compress_meta`` deflates the ``meta.json`` entry (its codebooks are
long lists of floats: 10 KB -> 4 KB on a 114K-Gaussian scene); a profile asks for it with its
``COMPRESS_META``. The unbundled form is a folder holding ``meta.json`` and the planes.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Callable

from ..errors import SogError
from .atomic import atomic_path

META = "meta.json"


def _entry(name: str, deflate: bool = False) -> zipfile.ZipInfo:
    """A zip entry with a fixed date (1980-01-01), so that the same scene and options give the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def write_container(meta: dict, files: dict[str, bytes], path: str | os.PathLike, *,
                    bundle: bool | None = None, overwrite: bool = False, compress_meta: bool = False) -> int:
    """Write ``meta`` and ``files`` to ``path`` atomically; return the bytes written.

    ``bundle=None`` picks the zip form for a ``.sog`` path and the folder form otherwise
    (a folder path, or a path ending in ``meta.json`` whose folder receives the planes).
    """
    path = Path(path)
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    if bundle is None:
        bundle = path.suffix.lower() == ".sog"
    if bundle:
        with atomic_path(path, overwrite) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(_entry(META, compress_meta), meta_bytes)
                for name, data in files.items():
                    zf.writestr(_entry(name), data)
        return path.stat().st_size
    folder = path.parent if path.name == META else path
    if overwrite and folder.is_dir() and not (folder / META).is_file():
        raise SogError(f"refusing to replace folder {folder}: it is not a SOG folder (no meta.json)")
    with atomic_path(folder, overwrite, directory=True) as tmp:
        (tmp / META).write_bytes(meta_bytes)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return len(meta_bytes) + sum(len(d) for d in files.values())


def read_container(path: str | os.PathLike) -> tuple[dict, Callable[[str], bytes], int]:
    """Open a ``.sog`` zip, a folder with ``meta.json``, or a ``meta.json`` path.

    Returns ``(meta, read(name) -> bytes, total_bytes)``. All files are read eagerly, so
    the returned reader does not keep the file open.
    """
    path = Path(path)
    if not path.exists():
        raise SogError(f"{path}: no such file or folder")
    if path.is_dir() or path.name == META:
        folder = path if path.is_dir() else path.parent
        if not (folder / META).is_file():
            raise SogError(f"{folder}: folder has no meta.json")
        store = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise SogError(f"{path}: corrupt .sog zip (bad CRC in {bad})")
                store = {info.filename.rsplit("/", 1)[-1]: zf.read(info) for info in zf.infolist()
                         if not info.is_dir()}
        except zipfile.BadZipFile as exc:
            raise SogError(f"{path}: not a valid .sog zip ({exc})") from None
        except (OSError, EOFError, zipfile.LargeZipFile) as exc:
            raise SogError(f"{path}: corrupt .sog zip ({exc})") from None
    if META not in store:
        raise SogError(f"{path}: .sog has no meta.json")
    try:
        meta = json.loads(store[META])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SogError(f"{path}: meta.json is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise SogError(f"{path}: meta.json is not a JSON object")

    def read(name: str) -> bytes:
        try:
            return store[name]
        except KeyError:
            raise SogError(f"{path}: .sog is missing {name}") from None

    total = os.path.getsize(path) if path.is_file() and path.name != META else sum(map(len, store.values()))
    return meta, read, total
