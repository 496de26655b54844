"""Cameras for rendering: pinhole cameras in gsplat/INRIA conventions, read from a scene's ``cameras.json``
(INRIA) or COLMAP model, or placed on an orbit around the scene.

Conventions (the same as gsplat): ``viewmat`` is the (4, 4) world-to-camera matrix of an OpenCV camera
(x right, y down, z forward); ``K`` is the (3, 3) intrinsics matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``
in pixels, with pixel (i, j) covering ``[j, j+1) x [i, i+1)`` so its centre is ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..errors import SogError
from ..splats import quat_to_rotmat

#: The up-axis names accepted by `orbit_cameras` (besides ``"auto"``).
UP_AXES = {"+x": (1.0, 0.0, 0.0), "-x": (-1.0, 0.0, 0.0), "+y": (0.0, 1.0, 0.0), "-y": (0.0, -1.0, 0.0),
           "+z": (0.0, 0.0, 1.0), "-z": (0.0, 0.0, -1.0)}


@dataclass
class Camera:
    """One pinhole camera: ``viewmat`` (4, 4) world->camera, ``K`` (3, 3), image ``width`` x ``height``."""

    viewmat: torch.Tensor
    K: torch.Tensor
    width: int
    height: int
    name: str = ""

    @property
    def position(self) -> torch.Tensor:
        """Camera centre in world coordinates, (3,)."""
        R, t = self.viewmat[:3, :3], self.viewmat[:3, 3]
        return -R.T @ t

    def resized(self, width: int, height: int) -> "Camera":
        """The same camera for a ``width`` x ``height`` image (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.clone()
        K[0] *= sx
        K[1] *= sy
        return replace(self, K=K, width=int(width), height=int(height))


def parse_size(size: int | tuple[int, int] | str) -> tuple[int, int]:
    """``256`` or ``"256"`` -> (256, 256); ``"320x240"`` or ``(320, 240)`` -> (width, height)."""
    if isinstance(size, str):
        parts = size.lower().split("x")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise SogError(f"image size {size!r} is not N or WxH") from None
        size = values[0] if len(values) == 1 else tuple(values)
    if isinstance(size, int):
        size = (size, size)
    width, height = (int(v) for v in size)
    if width < 1 or height < 1:
        raise SogError(f"image size {width}x{height} must be positive")
    return width, height


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    """(3, 3) float32 intrinsics matrix."""
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)


def look_at(eye, target, up, width: int, height: int, fov_deg: float = 50.0, name: str = "") -> Camera:
    """A camera at ``eye`` (3,) looking at ``target`` (3,) whose image 'up' is as close as possible to ``up`` (3,).

    ``fov_deg`` is the horizontal field of view; pixels are square; the principal point is the image centre.
    """
    eye, target, up = (torch.as_tensor(v, dtype=torch.float64) for v in (eye, target, up))
    z = target - eye
    if float(z.norm()) == 0:
        raise SogError("camera position equals its target")
    z = z / z.norm()
    if float(torch.linalg.cross(z, up).norm()) < 1e-6 * float(up.norm()):  # looking along up: pick any other
        up = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) if abs(float(z[0])) < 0.9 else \
            torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    x = torch.linalg.cross(z, up)           # OpenCV: x = y × z with y (down) = -up
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    R = torch.stack([x, y, z])              # rows: camera axes in world coordinates
    viewmat = torch.eye(4, dtype=torch.float64)
    viewmat[:3, :3] = R
    viewmat[:3, 3] = -R @ eye
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    return Camera(viewmat.float(), intrinsics(f, f, width / 2, height / 2), int(width), int(height), name)


def robust_bounds(means: torch.Tensor, lo: float = 0.02, hi: float = 0.98) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis ``lo`` and ``hi`` quantiles of ``means`` (N, 3) -> two (3,).

    Exact (each axis sorted), so they do not depend on the order of the Gaussians: the rate search renders a
    scene in its layers' order and ``sog eval`` in the input's, and both must get the same orbit (an evenly
    strided subsample of 200,000 gave playbot's search 56.89 dB where ``sog eval`` measured 56.87)."""
    m = torch.sort(means.detach().float().cpu(), dim=0).values
    n = m.shape[0]
    pos = torch.tensor([lo, hi], dtype=torch.float64) * (n - 1)  # linear interpolation, as torch.quantile
    below = pos.floor().long().clamp(0, n - 1)
    above = pos.ceil().long().clamp(0, n - 1)
    frac = (pos - below).float()[:, None]
    q = m[below] * (1 - frac) + m[above] * frac
    return q[0], q[1]


def detect_up(means: torch.Tensor) -> str:
    """The axis of smallest robust extent, signed by the usual convention: ``-y`` (INRIA/COLMAP captures and
    .splat files are -y up), ``+z`` (z-up scenes) or ``+x``."""
    lo, hi = robust_bounds(means)
    axis = int(torch.argmin(hi - lo))
    return ("+x", "-y", "+z")[axis]


@dataclass(frozen=True)
class _Frame:
    """What the generated views of a scene share: image size, up vector, robust box and its sphere, the plane
    normal to up (``e1``, ``e2``) and the distance at which the box's bounding sphere fills the view."""
    width: int
    height: int
    upv: torch.Tensor
    centre: torch.Tensor
    extent: torch.Tensor
    radius: float
    fit_distance: float
    e1: torch.Tensor
    e2: torch.Tensor

    def direction(self, az: float, elev: float) -> torch.Tensor:
        """Unit vector at azimuth ``az`` and elevation ``elev`` (radians) above the plane normal to up."""
        return math.cos(elev) * (math.cos(az) * self.e1 + math.sin(az) * self.e2) + math.sin(elev) * self.upv


def _frame(means: torch.Tensor, views: int, size, up: str, fov_deg: float, margin: float) -> _Frame:
    if views < 1:
        raise SogError(f"--views must be at least 1 (got {views})")
    width, height = parse_size(size)
    if up == "auto":
        up = detect_up(means)
    if up not in UP_AXES:
        raise SogError(f"unknown up axis {up!r} (use auto, {', '.join(UP_AXES)})")
    lo, hi = (v.double() for v in robust_bounds(means))
    radius = max(float((hi - lo).norm()) / 2, 1e-6)
    half_fov = math.radians(min(fov_deg, fov_deg * height / width)) / 2   # the narrower of the two
    upv = torch.tensor(UP_AXES[up], dtype=torch.float64)
    # two axes spanning the plane normal to up
    a = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) if abs(float(upv[0])) < 0.9 else \
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    e1 = torch.linalg.cross(upv, a)
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(upv, e1)
    return _Frame(width, height, upv, (lo + hi) / 2, hi - lo, radius, margin * radius / math.sin(half_fov), e1, e2)


def orbit_cameras(means: torch.Tensor, views: int, size: int | tuple[int, int] | str = 256, up: str = "-y",
                  fov_deg: float = 50.0, elevation_deg: float = 20.0, margin: float = 1.05) -> list[Camera]:
    """``views`` cameras evenly spaced in azimuth on a circle around the scene, looking at its centre.

    The scene's box is the 2nd..98th percentile of ``means`` (N, 3) per axis (robust to stray far Gaussians);
    the centre is the box's centre and the distance makes the box's bounding sphere fill the view (times
    ``margin``). Cameras sit ``elevation_deg`` above the plane through the centre that is normal to ``up``
    (one of `UP_AXES` or ``"auto"``, see `detect_up`).
    """
    f = _frame(means, views, size, up, fov_deg, margin)
    elev = math.radians(elevation_deg)
    cams = []
    for k in range(views):
        eye = f.centre + f.fit_distance * f.direction(2 * math.pi * k / views, elev)
        cams.append(look_at(eye, f.centre, f.upv, f.width, f.height, fov_deg, name=f"orbit_{k:03d}"))
    return cams


#: distances of `scene_views`' close views, in half-diagonals of the robust bounds (0.6: inside the box)
CLOSE_DISTANCES = (0.6, 1.4)
#: `scene_views`: every third view (k % 3 == 2) is an orbit view, the others close views
ORBIT_EVERY = 3


def scene_views(means: torch.Tensor, views: int, size: int | tuple[int, int] | str = 512, seed: int = 0,
                up: str = "-y", fov_deg: float = 50.0, name: str = "view") -> list[Camera]:
    """``views`` seeded cameras around and inside a scene, at several distances, the way a person looks at it.

    From the robust bounds of ``means`` (N, 3) (`robust_bounds`: centre ``c``, half-diagonal ``r``): view ``k``
    with ``k % 3 == 2`` is an *orbit* view (the `orbit_cameras` distance, which fits the bounding sphere into
    the view, looking at ``c``, azimuth uniform, elevation uniform in [-10, 40] degrees above the plane normal to
    ``up``); the others are *close* views at a distance uniform in `CLOSE_DISTANCES` times ``r`` from a target
    point ``c + U(-0.2, 0.2) * (hi - lo)`` per axis, in a direction of uniform azimuth and elevation uniform in
    [-20, 60] degrees (0.6 r puts some cameras inside the bounds). View ``k`` draws its numbers from its own
    generator, seeded ``seed * 1_000_003 + k``, so the first K views of a longer list are the K-view list, and
    two seeds give different cameras. Names: ``{name}_{k:03d}_close`` / ``_orbit``."""
    f = _frame(means, views, size, up, fov_deg, margin=1.05)
    cams = []
    for k in range(views):
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + k)
        u = torch.rand(6, generator=gen, dtype=torch.float64)
        az = 2 * math.pi * float(u[0])
        orbit = k % ORBIT_EVERY == ORBIT_EVERY - 1
        if orbit:
            elev, target = math.radians(-10 + 50 * float(u[1])), f.centre
            distance = f.fit_distance
        else:
            elev = math.radians(-20 + 80 * float(u[1]))
            lo_d, hi_d = CLOSE_DISTANCES
            distance = (lo_d + (hi_d - lo_d) * float(u[2])) * f.radius
            target = f.centre + (u[3:6] - 0.5) * 0.4 * f.extent
        cams.append(look_at(target + distance * f.direction(az, elev), target, f.upv, f.width, f.height, fov_deg,
                            name=f"{name}_{k:03d}_{'orbit' if orbit else 'close'}"))
    return cams


#: a camera file's views are split by index: every `HOLDOUT`-th (index % 8 == 0, the usual 3DGS test split) only
#: judges; the others may tune
HOLDOUT = 8


def split_cameras(cams: list[Camera], role: str) -> list[Camera]:
    """The ``"judging"`` (index % `HOLDOUT` == 0) or ``"tuning"`` (the rest) cameras of a camera file's list; two
    disjoint subsets (a file of one camera has no tuning cameras)."""
    if role not in ("judging", "tuning"):
        raise SogError(f"unknown camera role {role!r}")
    return [c for i, c in enumerate(cams) if (i % HOLDOUT == 0) == (role == "judging")]


def read_cameras_json(path: str | os.PathLike) -> list[Camera]:
    """Cameras from an INRIA ``cameras.json``: a list of ``{img_name, width, height, position (3,),
    rotation (3x3, camera-to-world), fx, fy}``; the principal point is the image centre."""
    from ..io.limits import LIMITS, parse_json

    try:
        with open(path, "rb") as fh:
            data = fh.read(LIMITS.max_json_bytes + 1)
    except OSError as exc:
        raise SogError(f"{path}: cannot read cameras.json ({exc.strerror or exc})") from None
    entries = parse_json(data, f"{path}", LIMITS.max_json_bytes)
    if not isinstance(entries, list):
        raise SogError(f"{path}: not an INRIA cameras.json (expected a list of cameras)")
    cams = []
    try:
        for i, e in enumerate(entries):
            c2w = torch.eye(4, dtype=torch.float64)
            c2w[:3, :3] = torch.tensor(e["rotation"], dtype=torch.float64)
            c2w[:3, 3] = torch.tensor(e["position"], dtype=torch.float64)
            w, h = check_camera(e["width"], e["height"], e["fx"], e["fy"], f"{path}: camera {i}")
            cams.append(Camera(torch.linalg.inv(c2w).float(), intrinsics(float(e["fx"]), float(e["fy"]), w / 2, h / 2),
                               w, h, str(e.get("img_name", f"cam_{i:03d}"))))
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise SogError(f"{path}: not an INRIA cameras.json ({type(exc).__name__}: {exc})") from None
    if not cams:
        raise SogError(f"{path}: no cameras")
    return cams


#: the largest camera image side a camera file may declare (pixels)
MAX_CAMERA_SIDE = 1 << 16


def check_camera(width, height, fx, fy, what: str) -> tuple[int, int]:
    """A camera's image size (whole numbers 1..`MAX_CAMERA_SIDE`) and focal lengths (finite, positive)."""
    from ..io.limits import check_int, check_number

    w = check_int(width, f"{what} width", 1, MAX_CAMERA_SIDE)
    h = check_int(height, f"{what} height", 1, MAX_CAMERA_SIDE)
    for name, f in (("fx", fx), ("fy", fy)):
        if not check_number(f, f"{what} {name}", 1e12) > 0:
            raise SogError(f"{what} {name} must be positive, not {f}")
    return w, h


def _qvec_to_rotmat(q: list[float]) -> torch.Tensor:
    return quat_to_rotmat(torch.tensor(q, dtype=torch.float64))


#: COLMAP camera model id -> (name, number of parameters); focal/centre are the first parameters.
_COLMAP_MODELS = {0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
                  4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
                  8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12)}


def _colmap_K(model: str, params: list[float]) -> torch.Tensor:
    if model.startswith("SIMPLE") or model in ("RADIAL", "RADIAL_FISHEYE", "FOV"):
        f, cx, cy = params[:3]
        return intrinsics(f, f, cx, cy)
    fx, fy, cx, cy = params[:4]
    return intrinsics(fx, fy, cx, cy)


def _read_colmap_text(folder: Path) -> tuple[dict, list]:
    cameras = {}
    for line in (folder / "cameras.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            p = line.split()
            cameras[int(p[0])] = (p[1], int(p[2]), int(p[3]), [float(v) for v in p[4:]])
    images = []
    lines = [ln for ln in (folder / "images.txt").read_text().splitlines() if not ln.startswith("#")]
    for line in lines[::2]:      # each image is two lines: pose, then its 2D points
        p = line.split()
        if len(p) >= 10:
            images.append((p[9], [float(v) for v in p[1:5]], [float(v) for v in p[5:8]], int(p[8])))
    return cameras, images


def _read_exact(fh, size: int, what: str) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise SogError(f"{what}: truncated (ends inside a record)")
    return data


def _record_count(fh, path: Path, record_bytes: int, what: str) -> int:
    """The record count at the start of a COLMAP binary file, refused when its records (at least ``record_bytes``
    each) could not fit in the file."""
    size = os.fstat(fh.fileno()).st_size
    count = struct.unpack("<Q", _read_exact(fh, 8, str(path)))[0]
    if count > size // record_bytes:
        raise SogError(f"{path}: declares {count} {what}, more than its {size} bytes can hold")
    return count


def _read_colmap_binary(folder: Path) -> tuple[dict, list]:
    """COLMAP's cameras.bin and images.bin; every read is bounded, so a truncated file ends in an error."""
    cameras = {}
    path = folder / "cameras.bin"
    with open(path, "rb") as fh:
        for _ in range(_record_count(fh, path, 24, "cameras")):
            cam_id, model_id, w, h = struct.unpack("<iiQQ", _read_exact(fh, 24, str(path)))
            name, nparams = _COLMAP_MODELS[model_id]
            cameras[cam_id] = (name, w, h, list(struct.unpack(f"<{nparams}d", _read_exact(fh, 8 * nparams, str(path)))))
    images = []
    path = folder / "images.bin"
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        for _ in range(_record_count(fh, path, 64, "images")):
            values = struct.unpack("<i7di", _read_exact(fh, 64, str(path)))
            name = bytearray()
            while (ch := fh.read(1)) != b"\x00":
                if not ch or len(name) > 4096:
                    raise SogError(f"{path}: truncated or corrupt (an image name has no end)")
                name += ch
            npoints = struct.unpack("<Q", _read_exact(fh, 8, str(path)))[0]
            if 24 * npoints > size - fh.tell():
                raise SogError(f"{path}: truncated (an image declares {npoints} points past the end of the file)")
            fh.seek(24 * npoints, 1)
            images.append((name.decode("utf-8", "replace"), list(values[1:5]), list(values[5:8]), values[8]))
    return cameras, images


def read_colmap(folder: str | os.PathLike) -> list[Camera]:
    """Cameras from a COLMAP model folder (``cameras`` + ``images``, ``.bin`` or ``.txt``; e.g. ``sparse/0``),
    sorted by image name. Lens distortion is ignored (the focal length and principal point are kept)."""
    folder = Path(folder)
    try:
        if (folder / "images.bin").exists():
            cameras, images = _read_colmap_binary(folder)
        elif (folder / "images.txt").exists():
            cameras, images = _read_colmap_text(folder)
        else:
            raise SogError(f"{folder}: no COLMAP images.bin or images.txt")
        cams = []
        for name, qvec, tvec, cam_id in sorted(images):
            model, w, h, params = cameras[cam_id]
            fx, fy = (params[0], params[0]) if len(params) < 4 or model.startswith("SIMPLE") or \
                model in ("RADIAL", "RADIAL_FISHEYE", "FOV") else (params[0], params[1])
            w, h = check_camera(w, h, fx, fy, f"{folder}: camera {cam_id}")
            if not all(math.isfinite(v) for v in [*qvec, *tvec, *params]):
                raise SogError(f"{folder}: image {name} has a pose or intrinsics that is not finite")
            viewmat = torch.eye(4, dtype=torch.float64)
            viewmat[:3, :3] = _qvec_to_rotmat(qvec)
            viewmat[:3, 3] = torch.tensor(tvec, dtype=torch.float64)
            cams.append(Camera(viewmat.float(), _colmap_K(model, params), int(w), int(h), name))
    except (OSError, KeyError, ValueError, IndexError, TypeError, struct.error) as exc:
        raise SogError(f"{folder}: cannot read the COLMAP model ({type(exc).__name__}: {exc})") from None
    if not cams:
        raise SogError(f"{folder}: COLMAP model has no images")
    return cams


def find_scene_cameras(scene_path: str | os.PathLike) -> Path | None:
    """A ``cameras.json`` or COLMAP model (``sparse/0``) stored next to a scene file, if there is one."""
    p = Path(scene_path)
    base = p.parent if p.is_file() or p.name == "meta.json" else p
    for folder in (base, base.parent, base.parent.parent):
        if (folder / "cameras.json").is_file():
            return folder / "cameras.json"
        for sub in ("sparse/0", "sparse"):
            if (folder / sub / "images.bin").is_file() or (folder / sub / "images.txt").is_file():
                return folder / sub
    return None


def load_cameras(path: str | os.PathLike) -> list[Camera]:
    """Cameras from a ``cameras.json`` file or a COLMAP model folder."""
    path = Path(path)
    if path.is_dir():
        return read_colmap(path)
    if not path.exists():
        raise SogError(f"{path}: no such cameras file or folder")
    return read_cameras_json(path)


def select_views(cams: list[Camera], views: int) -> list[Camera]:
    """``views`` cameras evenly spread over the list (all of them when there are fewer)."""
    if views >= len(cams):
        return list(cams)
    idx = torch.linspace(0, len(cams) - 1, views).round().long().tolist()
    return [cams[i] for i in idx]
