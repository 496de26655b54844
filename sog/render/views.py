"""Which cameras each job renders from: one module, so the sets that tune and the set that judges are kept apart.

* `judging_cameras` — the views `sog eval` (and every benchmark) reports on: ``JUDGING_SEED``.
* `search_cameras` — the views the rate search (``--psnr``, presets) measures its probes on: tuning views.
* `importance_views` — the views the importance layers measure render sensitivity from: tuning views.

Tuning views and judging views never share a pose: without a camera file both are `scene_views` (close and
orbit views at several distances) drawn with different seeds (``TUNING_SEED`` and ``JUDGING_SEED``); with a
camera file next to the scene (or given), its cameras are split by a fixed rule (`split_cameras`: every 8th
judges, the rest tune). The pipeline resolves the tuning cameras once and passes them down; nothing that tunes
calls `judging_cameras`.
"""

from __future__ import annotations

from ..splats import Splats
from .cameras import (Camera, find_scene_cameras, load_cameras, parse_size, scene_views, select_views,
                      split_cameras)

#: the seed of `sog eval`'s views (the judging set)
JUDGING_SEED = 0
#: the seed of the views that tuning (rate search, presets, importance) may use; never `JUDGING_SEED`
TUNING_SEED = 1
#: `sog eval`'s (and the benchmarks') defaults: 48 `scene_views` at 512 px, 32 of them close views and 16 orbit views
JUDGING_VIEWS, JUDGING_SIZE = 48, 512
#: the rate search's (``--psnr``, ``--quality small``) views: 48 `scene_views` at 256 px, 32 close and 16 orbit views
#: (a probe renders each of them: docs/profiles.md has the cost)
TUNING_VIEWS, TUNING_SIZE = 48, 256


def _resize(cams: list[Camera], size) -> list[Camera]:
    """File cameras at ``size``: N keeps each camera's aspect ratio with the longer side N; WxH is exact."""
    if isinstance(size, int) or (isinstance(size, str) and "x" not in size.lower()):
        longest = parse_size(size)[0]
        out = []
        for c in cams:
            s = longest / max(c.width, c.height)
            out.append(c.resized(max(1, round(c.width * s)), max(1, round(c.height * s))))
        return out
    w, h = parse_size(size)
    return [c.resized(w, h) for c in cams]


def _cameras(role: str, seed: int, splats: Splats, source_path, views: int, size, cameras, up: str,
             fov_deg: float) -> tuple[list[Camera], str]:
    source = cameras
    if source is None and source_path is not None:
        source = find_scene_cameras(source_path)
    if source is not None:
        subset = split_cameras(load_cameras(source), role)
        if subset:
            return _resize(select_views(subset, views), size), f"{source} ({role} subset)"
    return scene_views(splats.means, views, size, seed=seed, up=up, fov_deg=fov_deg, name=role), \
        f"scene views (seed {seed})"


def judging_cameras(splats: Splats, source_path=None, views: int = JUDGING_VIEWS, size=JUDGING_SIZE, cameras=None,
                    up: str = "-y", fov_deg: float = 50.0) -> tuple[list[Camera], str]:
    """The cameras `sog eval` renders with -> ``(cameras, source)``: the judging subset of ``cameras`` or of a
    camera file found next to ``source_path`` (``views`` of them, at ``size``), else ``views`` `scene_views` of
    ``splats`` with `JUDGING_SEED`."""
    return _cameras("judging", JUDGING_SEED, splats, source_path, views, size, cameras, up, fov_deg)


def tuning_cameras(splats: Splats, source_path=None, views: int = 8, size=256, up: str = "-y",
                   fov_deg: float = 50.0) -> list[Camera]:
    """Cameras that tuning may render from: the tuning subset of a camera file next to ``source_path``, else
    ``views`` `scene_views` with `TUNING_SEED` (close and orbit views, none of them a judging view)."""
    return _cameras("tuning", TUNING_SEED, splats, source_path, views, size, None, up, fov_deg)[0]


def search_cameras(splats: Splats, source_path=None, views: int = TUNING_VIEWS, size: int = TUNING_SIZE) -> list[Camera]:
    """The views the rate search renders its probes from: `tuning_cameras` (by default `TUNING_VIEWS` at
    `TUNING_SIZE`)."""
    return tuning_cameras(splats, source_path, views, size)


def importance_views(splats: Splats, source_path=None, views: int = 12, size: int = 256) -> list[Camera]:
    """Views to measure importance from: `tuning_cameras` (close views and orbit views, several distances)."""
    return tuning_cameras(splats, source_path, views, size)
