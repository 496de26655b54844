"""Which cameras each job renders from: one module, so the sets that tune and the set that judges are kept apart.

* `judging_cameras` — the views `sog eval` (and every benchmark) reports on.
* `search_cameras` — the views the rate search (``--psnr``, presets) measures its probes on.
* `importance_views` — the views the importance layers measure render sensitivity from.

The pipeline resolves the tuning cameras once and passes them down; nothing that tunes calls
`judging_cameras`.
"""

from __future__ import annotations

from ..splats import Splats
from .cameras import Camera, find_scene_cameras, load_cameras, orbit_cameras, parse_size, select_views


def judging_cameras(splats: Splats, source_path=None, views: int = 8, size=256, cameras=None, up: str = "-y",
                    fov_deg: float = 50.0) -> tuple[list[Camera], str]:
    """The cameras `sog eval` renders with: ``cameras`` or a camera file found next to ``source_path``
    (``views`` of them, resized to ``size``), else an orbit around ``splats``; returns ``(cameras, source)``."""
    source = cameras
    if source is None and source_path is not None:
        source = find_scene_cameras(source_path)
    if source is None:
        return orbit_cameras(splats.means, views, size, up=up, fov_deg=fov_deg), "orbit"
    cams = select_views(load_cameras(source), views)
    if isinstance(size, int) or (isinstance(size, str) and "x" not in size.lower()):
        longest = parse_size(size)[0]         # keep each camera's aspect ratio; the longer side is `size`
        out = []
        for c in cams:
            s = longest / max(c.width, c.height)
            out.append(c.resized(max(1, round(c.width * s)), max(1, round(c.height * s))))
        cams = out
    else:
        w, h = parse_size(size)
        cams = [c.resized(w, h) for c in cams]
    return cams, str(source)


def search_cameras(splats: Splats, source_path=None, views: int = 8, size: int = 256) -> list[Camera]:
    """The views the rate search renders its probes from (today still `judging_cameras`' set: issue 21 parts
    them)."""
    return judging_cameras(splats, source_path, views, size)[0]


def importance_views(splats: Splats, source_path=None, views: int = 12, size: int = 256) -> list[Camera]:
    """Views to measure importance from: up to ``views`` of a camera file next to the source, else an orbit at
    two elevations that `sog eval`'s views do not use."""
    from .importance import importance_cameras

    if source_path is not None and find_scene_cameras(source_path) is not None:
        return judging_cameras(splats, source_path, views=views, size=size)[0]
    return importance_cameras(splats, views, size)
