"""PlayCanvas streamed SOG (``lod-meta.json``): a tree of nodes, each with ranges of Gaussians per
level of detail, stored in SOG files listed in ``filenames``. Reading gives one level (0 = finest)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import SogError
from ..splats import Splats


def read_lod_meta(path: str | os.PathLike, level: int = 0) -> Splats:
    """All Gaussians of LOD ``level`` (0 is the full-resolution level), in tree order."""
    from . import load

    path = Path(path)
    try:
        meta = json.loads(path.read_text())
        filenames = meta["filenames"]
        ranges: list[tuple[int, int, int]] = []

        def walk(node: dict) -> None:
            lod = node.get("lods", {}).get(str(level))
            if lod is not None:
                ranges.append((int(lod["file"]), int(lod["offset"]), int(lod["count"])))
            for child in node.get("children", []):
                walk(child)

        walk(meta["tree"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SogError(f"{path}: malformed lod-meta.json ({type(exc).__name__}: {exc})") from None
    if not ranges:
        raise SogError(f"{path}: no Gaussians at level of detail {level} (levels: {meta.get('lodLevels')})")
    files: dict[int, Splats] = {}
    parts = []
    for file, offset, count in ranges:
        if file not in files:
            files[file] = load(path.parent / filenames[file])
        scene = files[file]
        if offset + count > len(scene):
            raise SogError(f"{path}: range {offset}+{count} exceeds the {len(scene)} Gaussians of {filenames[file]}")
        parts.append(scene.permute(torch.arange(offset, offset + count)))
    return Splats.concat(parts).validate(str(path))
