"""What the viewer page is given for a scene file: the bytes it decodes and the figures it shows.

A ``.sog`` zip (native profile or SOG v2) goes to the page as it is and is decoded in the browser; a SOG folder
(or its ``meta.json``) is bundled into a stored zip in memory, byte for byte the same planes; everything else
(PLY, ``.spz``, ``.splat``, ``lod-meta.json``) is read with `sog.load` and sent as a raw float file
(`sog.viewer.raw`). Every input is loaded with `sog.load` first, so a bad file is a `SogError` before anything
is served.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SogError
from .raw import raw_bytes


@dataclass
class Scene:
    """One scene as the page gets it.

    ``kind`` is ``"sog"`` (``data`` is a .sog zip the page decodes) or ``"raw"`` (a raw float file);
    ``bytes`` is the stored size of the input (a folder: its files), the figure bits per Gaussian is based on.
    """

    name: str
    format: str
    kind: str
    data: bytes
    count: int
    sh_degree: int
    bytes: int
    profile: str = ""

    def info(self, url: str) -> dict:
        """The page's description of this scene (JSON), fetched from ``url``."""
        return {"name": self.name, "format": self.format, "kind": self.kind, "profile": self.profile,
                "url": url, "count": self.count, "sh_degree": self.sh_degree, "bytes": self.bytes,
                "bits_per_gaussian": 8 * self.bytes / self.count, "transfer_bytes": len(self.data)}

    @property
    def extension(self) -> str:
        return ".sog" if self.kind == "sog" else ".sograw"


def _folder_zip(folder: Path) -> bytes:
    """A stored zip of a SOG folder's files (meta.json first), as the page reads a .sog."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
        for name in sorted(names, key=lambda n: n != "meta.json"):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), (folder / name).read_bytes())
    return buf.getvalue()


def prepare_scene(path: str | os.PathLike) -> Scene:
    """Load ``path`` with `sog.load` (raises `SogError` for anything it cannot read) and make its `Scene`."""
    from ..evaluate import input_bytes
    from ..io import detect_format, load, read_container

    path = Path(path)
    fmt = detect_format(path)
    splats = load(path)
    stored = input_bytes(path)
    profile = ""
    if fmt == "sog":
        meta = read_container(path)[0]
        profile = "sog" if meta.get("profile") == "sog" else "playcanvas"
        if path.is_file() and path.name != "meta.json":
            data = path.read_bytes()
        else:
            data = _folder_zip(path if path.is_dir() else path.parent)
        kind = "sog"
    else:
        data, kind = raw_bytes(splats), "raw"
    name = path.parent.name + "/" + path.name if path.name == "meta.json" else path.name
    return Scene(name=name, format=fmt, kind=kind, data=data, count=len(splats), sh_degree=splats.sh_degree,
                 bytes=stored, profile=profile)


def unchecked_scene(path: str | os.PathLike) -> Scene:
    """A ``.sog`` zip sent to the page as it is, without `sog.load` (tests use it to show the page's own error for
    a corrupt file); figures the page cannot know are zero."""
    path = Path(path)
    if not path.is_file():
        raise SogError(f"{path}: no such file")
    data = path.read_bytes()
    return Scene(name=path.name, format="sog", kind="sog", data=data, count=1, sh_degree=0, bytes=len(data))
