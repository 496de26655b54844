"""The ``playcanvas`` profile: PlayCanvas SOG v2 as splat-transform writes it, readable by the PlayCanvas engine
and every v2 reader; the plain writer, a baseline for `sog.codec.sogv2`. The layout and the decoder are
`sog.codec.v2`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SogError
from ..splats import Splats
from .base import Profile
from .image import encode_image
from .palette import default_palette_size
from .quantize import codebook_1d, kmeans
from .v2 import decode, grid_of, log_transform, pack_quats

#: PlayCanvas's own .sog stores meta.json uncompressed; so do we, to stay byte-alike
COMPRESS_META = False


@dataclass
class Options:
    """Encoder settings; none of them changes the format, only size and speed."""

    effort: int = 4           #: WebP effort 0..6
    palette_size: int | None = None  #: SH palette entries; None = splat-transform's rule (<= 65536)
    kmeans_iters: int = 10
    seed: int = 0


def encode(splats: Splats, width: int, height: int,
           options: Options | None = None, progress=None) -> tuple[dict, dict[str, bytes]]:
    """Encode ``splats`` (already in grid order) into SOG v2 planes.

    Returns ``(meta, files)`` where ``files`` maps file names to WebP bytes.
    ``progress(step_name)`` is called after each plane, when given.
    """
    options = options or Options()
    n = len(splats)
    if width * height < n:
        raise SogError(f"grid {width}x{height} is too small for {n} Gaussians")
    if width > 16383 or height > 16383:
        raise SogError(f"grid {width}x{height} exceeds WebP's 16383-pixel limit")
    tick = progress or (lambda name: None)
    files: dict[str, bytes] = {}

    def plane(name: str, rgba: np.ndarray) -> None:
        img = np.zeros((width * height, 4), np.uint8)
        img[:, 3] = 255
        img[:n] = rgba
        files[name] = encode_image(img.reshape(height, width, 4), "webp", options.effort)
        tick(name)

    # Positions: 16 bits per axis in log space.
    means = splats.means.detach().cpu().double().numpy()
    lmeans = log_transform(means)
    mins, maxs = lmeans.min(0), lmeans.max(0)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    q = np.rint((lmeans - mins) / span * 65535).astype(np.uint32)
    ones = np.full((n, 1), 255, np.uint8)
    plane("means_l.webp", np.concatenate([(q & 0xFF).astype(np.uint8), ones], 1))
    plane("means_u.webp", np.concatenate([(q >> 8).astype(np.uint8), ones], 1))

    plane("quats.webp", pack_quats(splats.quats.detach().cpu().double().numpy()))

    scales = splats.scales.detach().cpu().numpy()
    scale_cb, scale_idx = codebook_1d(scales)
    plane("scales.webp", np.concatenate([scale_idx, ones], 1))

    sh0 = splats.sh0.detach().cpu().numpy().reshape(n, 3)
    sh0_cb, sh0_idx = codebook_1d(sh0)
    opacity = 1.0 / (1.0 + np.exp(-splats.opacities.detach().cpu().double().numpy()))
    alpha = np.clip(np.rint(opacity * 255), 0, 255).astype(np.uint8)[:, None]
    plane("sh0.webp", np.concatenate([sh0_idx, alpha], 1))

    meta = {
        "version": 2,
        "asset": {"generator": "sog (playcanvas profile)"},
        "count": n,
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": scale_cb.tolist(), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": sh0_cb.tolist(), "files": ["sh0.webp"]},
    }

    k = splats.shN.shape[1]
    if k:
        rest = splats.shN.detach().cpu().float()  # (N, K, 3)
        flat = rest.transpose(1, 2).reshape(n, 3 * k)  # channel-major, as f_rest
        size = options.palette_size or default_palette_size(n)
        centroids, labels = kmeans(flat, min(size, 65536), options.kmeans_iters, options.seed)
        tick("shN palette")
        c = centroids.shape[0]
        cb, cidx = codebook_1d(centroids.numpy())  # (c, 3K) uint8
        rows = math.ceil(c / 64)
        pal = np.zeros((rows * 64, k, 4), np.uint8)
        pal[..., 3] = 255
        pal[:c, :, :3] = cidx.reshape(c, 3, k).transpose(0, 2, 1)
        files["shN_centroids.webp"] = encode_image(pal.reshape(rows, 64 * k, 4), "webp", options.effort)
        lab = labels.numpy().astype(np.uint32)
        plane("shN_labels.webp", np.stack([lab & 0xFF, lab >> 8, np.zeros_like(lab), np.full_like(lab, 255)],
                                           1).astype(np.uint8))
        meta["shN"] = {"count": int(c), "bands": splats.sh_degree, "codebook": cb.tolist(),
                       "files": ["shN_centroids.webp", "shN_labels.webp"]}
    return meta, files


class PlayCanvasProfile(Profile):
    """SOG v2 with splat-transform's choices (`--profile playcanvas`): the plain writer, a baseline for `sogv2`."""

    name = "playcanvas"
    summary = "PlayCanvas SOG v2 as splat-transform writes it (every v2 reader)"
    Options = Options
    compress_meta = COMPRESS_META

    def encode(self, layers, options, progress=None, palette=None):  # no palette to reuse: `fit_palette` gives none
        if len(layers) != 1:
            raise SogError(f"the {self.name} profile stores one grid, not {len(layers)} layers")
        layer = layers[0]
        return encode(layer.splats, layer.width, layer.height, options, progress=progress)

    def claims(self, meta: dict) -> bool:
        return meta.get("profile", "playcanvas") == "playcanvas"  # SOG v2 files name no profile

    def decode(self, meta, read):
        return decode(meta, read)

    def grids(self, meta, read):
        return [grid_of(meta, read)]


PROFILE = PlayCanvasProfile()
