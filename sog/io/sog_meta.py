"""Checks of a ``.sog`` ``meta.json`` before any plane is decoded: one function per profile.

Each check walks the fields its profile's decoder uses and refuses, with the field named, a wrong type,
a missing key, a number that is not finite or outside what the planes can hold (counts, bit depths,
levels, codebook lengths and steps, SH bands, grid sizes), so the decoder only ever sees sizes it can
allocate. `open_sog` reads a container, checks its meta and returns a reader that also refuses an image
whose header declares more pixels than a plane of that file may have (before the image is decoded).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from typing import Callable

from ..errors import SogError
from .container import read_container
from .limits import LIMITS, Limits, check_count, check_int, check_name, check_number, check_numbers

SH_BANDS = (0, 1, 2, 3)
MAX_PALETTE = 65536  #: SH palette entries (16-bit labels)
MAX_CODEBOOK = 65536  #: entries of a native codebook (16-bit labels)
MAX_STEP = 1 << 32  #: one step of a native codebook (`sog.codec.native.codebook_json`) on its 2^16 grid


def _dict(meta, key: str, what: str, required: bool = True) -> dict | None:
    value = meta.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise SogError(f"{what}.{key} must be an object, not {_kind(value)}" if key in meta
                       else f"{what} has no {key!r}")
    return value


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _files(meta: dict, key: str, what: str, count: int) -> list[str]:
    files = meta.get("files")
    if not isinstance(files, list) or len(files) != count:
        raise SogError(f"{what}.files must be a list of {count} file name(s)")
    return [check_name(f, f"{what}.files[{i}]") for i, f in enumerate(files)]


def _codebook(stored, what: str, max_length: int, limits: Limits) -> None:
    """A native codebook: a plain list of finite numbers, or ``{"first", "unit", "steps"}`` with integer steps."""
    if isinstance(stored, dict):
        first = check_number(stored.get("first"), f"{what}.first", 2 * limits.max_abs_value)
        unit = check_number(stored.get("unit"), f"{what}.unit", 2 * limits.max_abs_value)
        steps = stored.get("steps")
        if not isinstance(steps, list) or not 1 <= len(steps) <= max_length:
            raise SogError(f"{what}.steps must be a list of 1..{max_length} whole numbers")
        total = 0
        for i, s in enumerate(steps):
            total += check_int(s, f"{what}.steps[{i}]", 0, MAX_STEP)
        if max(abs(first), abs(first + unit * total)) > 2 * limits.max_abs_value:
            raise SogError(f"{what} reaches beyond ±{2 * limits.max_abs_value:g}")
        return
    check_numbers(stored, what, max_length=max_length, limit=2 * limits.max_abs_value)


def _grid(meta: dict, what: str, n: int, limits: Limits) -> None:
    w = check_int(meta.get("width"), f"{what}.width", 1, limits.max_image_side)
    h = check_int(meta.get("height"), f"{what}.height", 1, limits.max_image_side)
    if w * h < n:
        raise SogError(f"{what}: a {w}x{h} grid cannot hold its {n:,} Gaussians")
    if w * h > limits.plane_pixels(n):
        raise SogError(f"{what}: a {w}x{h} grid is far larger than its {n:,} Gaussians need")


def check_native_meta(meta: dict, what: str = "meta.json", limits: Limits = LIMITS) -> int:
    """Check a native-profile meta (plain version 1, 2, 4, 5 or layered version 3); returns its Gaussian count."""
    version = meta.get("version")
    if version == 3:
        n = check_count(meta.get("count"), f"{what}.count", limits)
        layers = meta.get("layers")
        if not isinstance(layers, list) or not 1 <= len(layers) <= limits.max_layers:
            raise SogError(f"{what}.layers must be a list of 1..{limits.max_layers} layer metas")
        files = _dict(meta, "files", what)
        for key, name in files.items():
            check_name(name, f"{what}.files.{key}")
        total = 0
        for i, layer in enumerate(layers):
            if not isinstance(layer, dict):
                raise SogError(f"{what}.layers[{i}] must be an object, not {_kind(layer)}")
            if layer.get("version") == 3:
                raise SogError(f"{what}.layers[{i}] may not itself be layered")
            total += check_native_meta(layer, f"{what}.layers[{i}]", limits)
        if total != n:
            raise SogError(f"{what}.count says {n:,} Gaussians, its layers hold {total:,}")
        shn = _dict(meta, "shN", what, required=False)
        if shn is not None:
            _native_shn(shn, f"{what}.shN", files, limits, top=True)
        return n
    if version not in (1, 2, 4, 5):
        raise SogError(f"{what}: unsupported native sog version {version!r} (sog reads 1, 2, 3, 4 and 5)")
    n = check_count(meta.get("count"), f"{what}.count", limits)
    _grid(meta, what, n, limits)
    files = _dict(meta, "files", what)
    for key, name in files.items():
        check_name(name, f"{what}.files.{key}")
    means = _dict(meta, "means", what)
    bits = check_int(means.get("bits"), f"{what}.means.bits", 8, 16)
    if "levels" in means:
        check_int(means["levels"], f"{what}.means.levels", 2, 1 << bits)
    check_numbers(means.get("mins"), f"{what}.means.mins", 3, limit=2 * limits.max_abs_value)
    check_numbers(means.get("maxs"), f"{what}.means.maxs", 3, limit=2 * limits.max_abs_value)
    if "transform" in means and means["transform"] not in ("log", "linear"):
        raise SogError(f"{what}.means.transform must be 'log' or 'linear'")
    if version != 1:
        quats = _dict(meta, "quats", what)
        if "levels" in quats:
            check_int(quats["levels"], f"{what}.quats.levels", 3, 255)
        if "bits" in quats or "levels" not in quats:  # the decoder works out a default from bits even with levels
            check_int(quats.get("bits"), f"{what}.quats.bits", 2, 8)
    scales = _dict(meta, "scales", what)
    check_int(scales.get("bits", 8), f"{what}.scales.bits", 8, 16)
    _codebook(scales.get("codebook"), f"{what}.scales.codebook", MAX_CODEBOOK, limits)
    sh0 = _dict(meta, "sh0", what)
    _codebook(sh0.get("codebook"), f"{what}.sh0.codebook", 256, limits)
    check_int(sh0.get("opacity_bits", 8), f"{what}.sh0.opacity_bits", 1, 8)
    shn = _dict(meta, "shN", what, required=False)
    if shn is not None:
        _native_shn(shn, f"{what}.shN", files, limits, top=False)
    return n


def _native_shn(shn: dict, what: str, files: dict, limits: Limits, top: bool) -> None:
    check_int(shn.get("bands"), f"{what}.bands", 0, 3)
    check_int(shn.get("count"), f"{what}.count", 1, MAX_PALETTE)
    if shn.get("shared") and not top:
        return
    if "shN_centroids" not in files:
        raise SogError(f"{what}: the file names no shN_centroids plane")
    if shn.get("layout", "planes") not in ("planes", "rgb"):
        raise SogError(f"{what}.layout must be 'rgb' (or absent), not {shn.get('layout')!r}")
    _codebook(shn.get("codebook"), f"{what}.codebook", 256, limits)


def check_playcanvas_meta(meta: dict, what: str = "meta.json", limits: Limits = LIMITS) -> int:
    """Check a SOG v2 (PlayCanvas) meta; returns its Gaussian count."""
    if meta.get("version") != 2:
        raise SogError(f"{what}: unsupported SOG meta version {meta.get('version')!r} (expected 2)")
    n = check_count(meta.get("count"), f"{what}.count", limits)
    means = _dict(meta, "means", what)
    log_limit = math.log1p(2 * limits.max_abs_value)  # positions are stored as sign(x) log(1 + |x|)
    check_numbers(means.get("mins"), f"{what}.means.mins", 3, limit=log_limit)
    check_numbers(means.get("maxs"), f"{what}.means.maxs", 3, limit=log_limit)
    _files(means, "files", f"{what}.means", 2)
    _files(_dict(meta, "quats", what), "files", f"{what}.quats", 1)
    for key in ("scales", "sh0"):
        part = _dict(meta, key, what)
        check_numbers(part.get("codebook"), f"{what}.{key}.codebook", max_length=256, limit=2 * limits.max_abs_value)
        _files(part, "files", f"{what}.{key}", 1)
    shn = _dict(meta, "shN", what, required=False)
    if shn is not None:
        check_int(shn.get("bands"), f"{what}.shN.bands", 1, 3)
        check_int(shn.get("count"), f"{what}.shN.count", 1, MAX_PALETTE)
        check_numbers(shn.get("codebook"), f"{what}.shN.codebook", max_length=256, limit=2 * limits.max_abs_value)
        _files(shn, "files", f"{what}.shN", 2)
    return n


def check_sog_meta(meta: dict, what: str = "meta.json", limits: Limits = LIMITS) -> int:
    """Check a meta of either profile (``"profile"``: ``"sog"``, or absent/``"playcanvas"`` for SOG v2)."""
    profile = meta.get("profile", "playcanvas")
    if profile == "sog":
        return check_native_meta(meta, what, limits)
    if profile == "playcanvas":
        return check_playcanvas_meta(meta, what, limits)
    raise SogError(f"{what}: unknown .sog profile {profile!r}" if isinstance(profile, str)
                   else f"{what}.profile must be a string, not {_kind(profile)}")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header (Pillow reads the header only), or None when it is no image."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we judge the size ourselves
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except Exception:  # not an image (or one Pillow itself refuses): the decoder names the problem
        return None


def guarded_reader(read: Callable[[str], bytes], source: str, count: int,
                   limits: Limits = LIMITS) -> Callable[[str], bytes]:
    """``read`` that refuses an image whose header declares sides beyond ``max_image_side`` or more pixels than
    `Limits.plane_pixels` of ``count``, before anything decodes it."""
    budget = limits.plane_pixels(count)

    def guarded(name: str) -> bytes:
        data = read(name)
        size = image_size(data)
        if size is not None:
            w, h = size
            if w > limits.max_image_side or h > limits.max_image_side or w * h > budget:
                raise SogError(f"{source}: image {name} declares {w}x{h} pixels, more than a plane of "
                               f"{count:,} Gaussians may have")
        return data

    return guarded


def open_sog(path: str | os.PathLike, limits: Limits = LIMITS) -> tuple[dict, Callable[[str], bytes], int]:
    """`read_container` plus `check_sog_meta`, the count against the bytes stored (`Limits.stored_count`) and
    `guarded_reader`: ``(meta, read, total_bytes)``."""
    meta, read, total = read_container(path, limits)
    count = check_sog_meta(meta, f"{path}: meta.json", limits)
    if count > limits.stored_count(total):
        raise SogError(f"{path}: meta.json declares {count:,} Gaussians in only {total:,} bytes (sog reads at most "
                       f"{limits.gaussians_per_byte} per stored byte plus {limits.count_slack:,}); its planes "
                       "cannot hold that many real Gaussians")
    return meta, guarded_reader(read, str(path), count, limits), total
