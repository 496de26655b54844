"""``sog eval ORIGINAL COMPRESSED``: size and render quality of a compressed scene against its original.

Size: ``bytes`` of the compressed input (a .sog zip or any single file: its size; a SOG folder or
``meta.json``: the meta plus the planes it names; a ``lod-meta.json``: every file under its folder),
``ratio`` = PLY bytes of the original / ``bytes`` (the original's file size when it is a PLY, else the size
of the float32 INRIA PLY for its count and SH degree), ``bits_per_gaussian`` = 8 · bytes / original count.

Quality: both scenes are rendered from the same K judging cameras (`sog.render.views.judging_cameras`: by
default `JUDGING_VIEWS` = 48 views at 512 px, 32 close views at 0.6-1.4 half-diagonals of the original's robust
bounds and 16 orbit views, seeded with `JUDGING_SEED`; or the judging subset of a ``cameras.json``/COLMAP model
found next to the original or given with ``cameras``) and compared per view. No tuning step of the compressor
(rate search, presets, importance) renders from these cameras. ``psnr`` is the mean over views of the per-view
PSNR (each capped at 100 dB so identical renders give a finite number), ``psnr_p10`` its 10th percentile
(`sog.metrics.percentile`), ``psnr_min`` the worst view's, ``worst_view`` its name; ``ssim``, ``ssim_p10`` and
``ssim_min`` the same for the per-view SSIM (`sog.metrics`). The original is the reference: nothing is compared to
ground-truth photos. LPIPS is not reported: the ``lpips`` package ships only its linear heads and loads its
AlexNet/VGG backbones from the network at run time, which this project cannot rely on.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from .errors import SogError
from .io.limits import LIMITS, Limits
from .render.views import JUDGING_SIZE, JUDGING_VIEWS
from .splats import Splats


def input_bytes(path: str | os.PathLike) -> int:
    """Stored size of a scene input in bytes (see the module docstring for folders and meta.json)."""
    from .io import detect_format, read_container

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "sog":
        return int(read_container(path)[2])
    if fmt == "lod":
        return sum(f.stat().st_size for f in path.parent.rglob("*") if f.is_file())
    return path.stat().st_size


def original_ply_bytes(path: str | os.PathLike | None, splats: Splats) -> int:
    """The PLY size the ratio is measured against: the file's own size for a PLY, else the INRIA PLY size."""
    from .io import detect_format
    from .io.ply import inria_ply_size

    if path is not None and detect_format(path) == "ply":
        return Path(path).stat().st_size
    return inria_ply_size(len(splats), splats.sh_degree)


def evaluation_cameras(original_path, splats: Splats, views: int = JUDGING_VIEWS, size=JUDGING_SIZE, cameras=None,
                       up: str = "-y", fov_deg: float = 50.0):
    """The cameras `evaluate` renders with (`sog.render.views.judging_cameras`; ``cameras`` may also be a list of
    `sog.render.Camera`, rendered as given); returns ``(cameras, source)``."""
    from .render.cameras import Camera
    from .render.views import judging_cameras

    if isinstance(cameras, (list, tuple)) and all(isinstance(c, Camera) for c in cameras):
        return list(cameras), "given cameras"
    return judging_cameras(splats, original_path, views, size, cameras, up, fov_deg)


def check_view_options(views: int, size, fov_deg: float, limits: Limits = LIMITS) -> None:
    """`SogError` for a view count, image size or field of view `evaluate` would refuse (before any work)."""
    from .render.cameras import parse_size

    if not 1 <= views <= limits.max_views:
        raise SogError(f"--views must be 1..{limits.max_views}, not {views}")
    width, height = parse_size(size)
    if max(width, height) > limits.max_render_side:
        raise SogError(f"--size {size}: at most {limits.max_render_side} pixels a side")
    if not (math.isfinite(fov_deg) and 0 < fov_deg < 180):
        raise SogError(f"--fov must be between 0 and 180 degrees (exclusive), not {fov_deg}")


def _save_views(folder: Path, ref: torch.Tensor, test: torch.Tensor, psnrs: list[float], names: list[str]) -> list[str]:
    """Side-by-side PNGs, worst view first: ``worst_00_<camera>.png`` is the view of lowest PSNR (original |
    compressed | 4x absolute difference); README.txt lists them with their PSNR. ``folder`` is new (or empty) and
    appears complete or not at all (`sog.io.atomic.atomic_path`)."""
    from .io.atomic import atomic_path

    check_save_views(folder)
    if folder.is_dir():
        folder.rmdir()  # empty (checked): the new folder takes its place whole
    with atomic_path(folder, directory=True) as tmp:
        names = _write_views(tmp, ref, test, psnrs, names)
    return [str(folder / name) for name in names]


def check_save_views(folder: Path) -> None:
    """``--save-views DIR`` is a new folder (or an empty one) in an existing folder: the views never land among
    other files."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise SogError(f"--save-views {folder}: exists and is not a folder; choose a new folder")
    if folder.is_dir() and any(os.scandir(folder)):
        raise SogError(f"--save-views {folder}: the folder exists and is not empty; choose a new folder")
    if not folder.parent.is_dir():
        raise SogError(f"--save-views {folder}: folder {folder.parent} does not exist")


def _write_views(folder: Path, ref: torch.Tensor, test: torch.Tensor, psnrs: list[float],
                 names: list[str]) -> list[str]:
    """`_save_views` into the (temporary) ``folder``; returns the PNGs' file names, worst first."""
    import numpy as np
    from PIL import Image

    paths, lines = [], []
    for rank, i in enumerate(sorted(range(ref.shape[0]), key=lambda i: (psnrs[i], i))):
        a, b = ref[i].clamp(0, 1), test[i].clamp(0, 1)
        diff = ((a - b).abs() * 4).clamp(0, 1)
        gap = torch.ones(a.shape[0], 4, 3)
        row = torch.cat([a, gap, b, gap, diff], 1)
        path = folder / f"worst_{rank:02d}_{names[i] or f'view_{i:03d}'}.png"
        Image.fromarray((row.numpy() * 255 + 0.5).astype(np.uint8)).save(path)
        paths.append(path.name)
        lines.append(f"{path.name}: PSNR {psnrs[i]:.2f} dB\n")
    (folder / "README.txt").write_text(
        "Worst view first. Each PNG: original render | compressed render | 4x absolute difference.\n"
        + "".join(lines))
    return paths


def evaluate(original: str | os.PathLike | Splats, compressed: str | os.PathLike | Splats,
             views: int = JUDGING_VIEWS, size: int | str | tuple[int, int] = JUDGING_SIZE, save_views: str | os.PathLike | None = None,
             device: str = "auto", backend: str = "auto", cameras: str | os.PathLike | None = None,
             up: str = "-y", fov_deg: float = 50.0, background: tuple[float, float, float] = (0.0, 0.0, 0.0),
             progress: bool = False) -> dict:
    """Compare ``compressed`` with ``original`` (paths of any readable format, or `Splats`) -> a dict with
    bytes, ply_bytes, ratio, bits_per_gaussian, psnr, ssim, per-view lists, counts, views, size, cameras,
    backend and seconds (keys are described in the module docstring). ``bytes``/``ratio`` are None when
    ``compressed`` is given as `Splats`."""
    from . import metrics
    from .device import resolve_device
    from .io import load
    from .render import RasterConfig, _pick_backend, render

    check_view_options(views, size, fov_deg)
    if save_views is not None:
        check_save_views(Path(save_views))  # before any rendering
    t0 = time.perf_counter()
    orig_path = None if isinstance(original, Splats) else original
    comp_path = None if isinstance(compressed, Splats) else compressed
    ref_scene = original if isinstance(original, Splats) else load(original)
    test_scene = compressed if isinstance(compressed, Splats) else load(compressed)
    cams, cam_source = evaluation_cameras(orig_path, ref_scene, views, size, cameras, up, fov_deg)
    config = RasterConfig(background=tuple(background))
    t1 = time.perf_counter()
    ref = render(ref_scene, cams, backend=backend, device=device, config=config, progress=progress)
    test = render(test_scene, cams, backend=backend, device=device, config=config, progress=progress)
    render_seconds = time.perf_counter() - t1
    psnr_views = metrics.view_psnrs(ref, test)
    ssim_views = [float(v) for v in metrics.ssim(ref, test)]
    n = len(ref_scene)
    nbytes = input_bytes(comp_path) if comp_path is not None else None
    ply = original_ply_bytes(orig_path, ref_scene)
    p, q = metrics.ViewStats.of(psnr_views), metrics.ViewStats.of(ssim_views)  # mean, p10, worst of each
    result = {
        "original": None if orig_path is None else str(orig_path),
        "compressed": None if comp_path is None else str(comp_path),
        "count": n, "count_compressed": len(test_scene),
        "sh_degree": ref_scene.sh_degree, "sh_degree_compressed": test_scene.sh_degree,
        "bytes": nbytes, "ply_bytes": ply,
        "ratio": None if not nbytes else ply / nbytes,
        "bits_per_gaussian": None if nbytes is None else 8 * nbytes / n,
        "psnr": p.mean, "ssim": q.mean, "psnr_p10": p.p10, "ssim_p10": q.p10, "psnr_min": p.worst, "ssim_min": q.worst,
        "worst_view": cams[psnr_views.index(min(psnr_views))].name,
        "psnr_views": psnr_views, "ssim_views": ssim_views, "view_names": [c.name for c in cams],
        "views": len(cams), "size": [cams[0].width, cams[0].height], "cameras": cam_source,
        "backend": _pick_backend(backend, resolve_device(device)), "device": str(resolve_device(device)),
        "render_seconds": round(render_seconds, 3),
    }
    if save_views is not None:
        result["saved_views"] = _save_views(Path(save_views), ref, test, psnr_views, [c.name for c in cams])
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result
