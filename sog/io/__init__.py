"""Reading and writing scenes: `load` any supported file, `save` a PLY."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SogError
from ..splats import Splats
from .container import read_container, write_container
from .ply import read_ply, write_ply
from .splat import read_splat

__all__ = ["load", "save", "read_ply", "write_ply", "read_splat", "read_container", "write_container",
           "detect_format"]


def detect_format(path: str | os.PathLike) -> str:
    """One of ``ply``, ``splat``, ``sog`` (zip, folder or meta.json), ``lod`` (lod-meta.json), ``spz``."""
    path = Path(path)
    if not path.exists():
        raise SogError(f"{path}: no such file or folder")
    if path.is_dir() or path.name == "meta.json":
        return "sog"
    if path.name.endswith("lod-meta.json"):
        return "lod"
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:3] == b"ply":
        return "ply"
    if head[:4] == b"PK\x03\x04":
        return "sog"
    if head[:2] == b"\x1f\x8b" or path.suffix.lower() == ".spz":
        return "spz"
    if path.suffix.lower() == ".splat":
        return "splat"
    raise SogError(f"{path}: not a Gaussian-splat file sog can read (expected .ply, .splat, .sog, .spz, "
                   "a SOG folder/meta.json or lod-meta.json)")


def load(path: str | os.PathLike) -> Splats:
    """Read any supported scene file into `Splats` (validated: non-empty, finite)."""
    fmt = detect_format(path)
    if fmt == "ply":
        return read_ply(path)
    if fmt == "splat":
        return read_splat(path)
    if fmt == "lod":
        from .lod import read_lod_meta
        return read_lod_meta(path)
    if fmt == "spz":
        from .spz import read_spz
        return read_spz(path)
    from ..codec import decode_container
    meta, read, _ = read_container(path)
    return decode_container(meta, read).validate(str(path))


def save(splats: Splats, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write `Splats` to a PLY file (the only float format sog writes)."""
    write_ply(splats, path, overwrite=overwrite)
