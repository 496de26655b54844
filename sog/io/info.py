"""What ``sog info`` reports about a scene file: format, count, SH degree, grids, stored bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..grid import grid_shape
from .limits import LIMITS, Limits


@dataclass
class SceneInfo:
    """A scene file as stored: its format (`sog.io.detect_format`), Gaussians, SH degree, the ``(H, W)`` grid of
    each layer (a file that is not a SOG container: the grid sog would sort it onto), bytes on disk (a SOG folder:
    its meta.json plus the planes it names) and the PLY properties a SOG cannot hold."""

    path: str
    format: str
    count: int
    sh_degree: int
    grids: list[tuple[int, int]]
    bytes: int
    extras: list[str] = field(default_factory=list)
    #: a reduced SOG file (`sog.reduce`): the Gaussians of the scene it was made from (meta ``sog.source_count``)
    source_count: int | None = None


def scene_info(path: str | os.PathLike, limits: Limits = LIMITS) -> SceneInfo:
    """Read ``path`` once (checked as `sog.io.load` checks it) and describe it (`SceneInfo`). A SOG container is
    opened once: its profile decodes the scene and names the grid of each importance layer. A ``lod-meta.json``
    is described from its tree and its chunks' meta (`sog.io.lod.lod_summary`: level 0; bytes: the files it
    reads)."""
    from . import as_sog_error, checked, detect_format, load

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "lod":  # from the tree and each chunk's meta: a streamed scene may be larger than sog reads whole
        from .lod import lod_summary

        count, degree, size = lod_summary(path, limits)
        return SceneInfo(str(path), fmt, count, degree, [grid_shape(count)], size)
    if fmt != "sog":
        splats = load(path, limits)
        return SceneInfo(str(path), fmt, len(splats), splats.sh_degree, [grid_shape(len(splats))],
                         path.stat().st_size, sorted(splats.extras))

    from ..codec import profile_of
    from .sog_meta import open_sog

    with as_sog_error(path):
        meta, read, size = open_sog(path, limits)
        profile = profile_of(meta)
        splats = checked(profile.decode(meta, read), path, limits)
        grids = [tuple(grid) for grid in profile.grids(meta, read)]
    return SceneInfo(str(path), fmt, len(splats), splats.sh_degree, grids, size, sorted(splats.extras),
                     source_count_of(meta, len(splats), limits))


def source_count_of(meta: dict, count: int, limits: Limits = LIMITS) -> int | None:
    """The ``sog.source_count`` of a SOG meta (the count a reduced file came from), None when absent;
    `SogError` when it is not a whole number of at least ``count`` (and below 2^40: the input may have been larger
    than a file may hold)."""
    from .limits import check_int

    extra = meta.get("sog")
    if not isinstance(extra, dict) or "source_count" not in extra:
        return None
    return check_int(extra["source_count"], "meta.json sog.source_count", count, max(count, 1 << 40))
