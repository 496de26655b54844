"""The SOG v2 format (PlayCanvas's): its layout, position transform, quaternion texels and decoder, shared by the
profiles that write it (`sog.codec.playcanvas`, `sog.codec.sogv2`) and by the native profile's log positions.

Layout (one texel per Gaussian, row-major, Gaussian i at texel i, unused texels at the end):

==================  ====================================================================
plane               content
==================  ====================================================================
means_l, means_u    low / high byte of 16-bit positions in ``sign(x)·ln(1+|x|)`` space,
                    scaled between ``meta.means.mins`` and ``maxs``
quats               smallest-three quaternion: three components in RGB as
                    ``255·(q·√2·0.5+0.5)``, alpha = 252 + index of the dropped component
scales              RGB = indices into the 256-entry ``meta.scales.codebook`` (log scale)
sh0                 RGB = indices into ``meta.sh0.codebook``; alpha = 255·sigmoid(opacity)
shN_labels          16-bit palette index (R low byte, G high byte)
shN_centroids       palette: 64 entries per row, each K texels wide, RGB = codebook indices
==================  ====================================================================

Facts about the format come from the PlayCanvas documentation and splat-transform's
reader; this is an independent implementation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import SogError
from ..splats import Splats
from .image import decode_image
from .planes import colour_and_opacity, sh_rest_count

SQRT2 = math.sqrt(2.0)
#: For each dropped (largest) component, the order of the three stored ones (w, x, y, z).
QUAT_KEEP = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])


def log_transform(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def inv_log_transform(y: np.ndarray) -> np.ndarray:
    return np.sign(y) * np.expm1(np.abs(y))


def pack_quats(quats: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz quaternions to (N, 4) uint8 smallest-three texels."""
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    q = np.where(norm > 0, quats / np.where(norm > 0, norm, 1), np.array([1.0, 0, 0, 0]))
    largest = np.abs(q).argmax(1)
    sign = np.where(q[np.arange(len(q)), largest] < 0, -1.0, 1.0)
    q = q * sign[:, None] * SQRT2
    kept = np.take_along_axis(q, QUAT_KEEP[largest], axis=1)
    rgb = np.clip(np.rint(255 * (kept * 0.5 + 0.5)), 0, 255).astype(np.uint8)
    return np.concatenate([rgb, (252 + largest).astype(np.uint8)[:, None]], 1)


def unpack_quats(texels: np.ndarray) -> np.ndarray:
    """(N, 4) uint8 smallest-three texels to (N, 4) unit wxyz quaternions."""
    tag = texels[:, 3].astype(np.int64)
    valid = (tag >= 252) & (tag <= 255)
    largest = np.clip(tag - 252, 0, 3)
    kept = (texels[:, :3].astype(np.float64) / 255 * 2 - 1) / SQRT2
    q = np.zeros((len(texels), 4))
    np.put_along_axis(q, QUAT_KEEP[largest], kept, axis=1)
    rest = np.sqrt(np.clip(1 - (kept ** 2).sum(1), 0, None))
    q[np.arange(len(q)), largest] = rest
    q[~valid] = [1.0, 0, 0, 0]
    return q


def decode(meta: dict, read, image=None) -> Splats:
    """Decode SOG v2 planes. ``read(name) -> bytes`` fetches a file named in ``meta``; ``image(name) -> (H, W, 4)
    uint8``, when given, hands over a plane already decoded (``read`` is then not called), as
    `sog.codec.sogv2.quantise` does with the planes it never compressed."""
    if image is None:
        def image(name: str) -> np.ndarray:
            return decode_image(read(name), name)
    try:
        version = meta.get("version")
        if version != 2:
            raise SogError(f"unsupported SOG meta version {version!r} (expected 2)")
        n = int(meta["count"])
        if n <= 0:
            raise SogError("SOG file holds zero Gaussians")

        def plane(name: str) -> np.ndarray:
            img = image(name)
            if img.shape[0] * img.shape[1] < n:
                raise SogError(f"{name}: {img.shape[1]}x{img.shape[0]} image is too small for {n} Gaussians")
            return img.reshape(-1, 4)[:n]

        mfiles = meta["means"]["files"]
        q = plane(mfiles[1])[:, :3].astype(np.float64)  # in place from here: (N, 3) float64 temporaries are large
        q *= 256
        q += plane(mfiles[0])[:, :3]  # the 16-bit code hi << 8 | lo, exact in float64
        q /= 65535
        mins, maxs = np.asarray(meta["means"]["mins"], np.float64), np.asarray(meta["means"]["maxs"], np.float64)
        q *= maxs - mins
        q += mins
        means = np.abs(q)
        np.expm1(means, out=means)
        means *= np.sign(q)  # inv_log_transform(q), without its temporaries

        quats = unpack_quats(plane(meta["quats"]["files"][0]))
        scale_cb = np.asarray(meta["scales"]["codebook"], np.float32)
        scales = scale_cb[plane(meta["scales"]["files"][0])[:, :3]]
        sh0_tex = plane(meta["sh0"]["files"][0])
        sh0, opacities = colour_and_opacity(np.asarray(meta["sh0"]["codebook"], np.float32), sh0_tex[:, :3],
                                            sh0_tex[:, 3], 255)
        shn_meta = meta.get("shN")
        k = sh_rest_count(shn_meta)
        shN = np.zeros((n, 0, 3), np.float32)
        if k:
            cb = np.asarray(shn_meta["codebook"], np.float32)
            cent = image(shn_meta["files"][0])
            if cent.shape[1] != 64 * k:
                raise SogError(f"shN centroids image is {cent.shape[1]} wide, expected {64 * k}")
            palette = cb[cent.reshape(-1, k, 4)[:, :, :3]]  # (entries, K, 3)
            lab = plane(shn_meta["files"][1])
            labels = lab[:, 0].astype(np.int64) | (lab[:, 1].astype(np.int64) << 8)
            count = min(int(shn_meta["count"]), palette.shape[0])
            # a label past the palette decodes to zeros: a zero row appended, gathered by whole rows in torch (a
            # boolean-mask assignment of (N, K, 3) took 6.7 of the 15 s of sog.load on 6M Gaussians, np.take 3.4 s)
            rows = np.concatenate([palette[:count].reshape(count, 3 * k), np.zeros((1, 3 * k), np.float32)])
            shN = torch.from_numpy(rows)[torch.from_numpy(np.minimum(labels, count))].numpy().reshape(n, k, 3)
    except SogError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SogError(f"malformed SOG meta.json ({type(exc).__name__}: {exc})") from None

    return Splats.from_arrays(means, scales, quats, opacities, sh0, shN)


def grid_of(meta: dict, read) -> tuple[int, int]:
    """(H, W) of a SOG v2 file: the size of its first position plane (the grid the file actually uses)."""
    plane = decode_image(read(meta["means"]["files"][0]))
    return plane.shape[0], plane.shape[1]
