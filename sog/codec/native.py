"""The native ``sog`` profile: SOG-style planes with the choices PlayCanvas's layout fixes left open.

Same idea as SOG v2 (one texel per Gaussian, row-major, Gaussian i at texel i), but:

* positions use ``means_bits`` (8..16) bits per axis; the high byte and the remaining low bits
  are separate RGB planes, so fewer bits make the noisy low plane cheaper;
* the SH palette size is a setting, its k-means is weighted by opacity × footprint, and the
  palette is ordered along its first principal axis so neighbouring labels hold similar
  entries (a smoother label plane);
* an optional SH band limit (``sh_degree``);
* each plane is stored with the smallest of the lossless codecs tried (``codecs``), no alpha
  channel where none is needed.

``meta.json`` carries ``"profile": "sog"`` and ``"version": 1`` (of this profile).

Presets (`PRESETS`, the CLI's ``--quality``): ``small``, ``default``, ``high``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..errors import SogError
from ..splats import SH_REST_COUNT, Splats
from .image import CODECS, decode_image, encode_image
from .playcanvas import default_palette_size, inv_log_transform, log_transform, pack_quats, unpack_quats
from .quantize import codebook_1d, kmeans

VERSION = 1


@dataclass
class Options:
    """Encoder settings for the native profile (stored choices are recorded in meta.json)."""

    effort: int = 4                    #: image-codec effort 0..6
    seed: int = 0
    means_bits: int = 16               #: bits per position axis, 8..16
    palette_size: int | None = 16384   #: cap on SH palette entries; None = splat-transform's rule
    palette_per: int = 16              #: >0: at most N / palette_per entries (a power of two, >= 256)
    kmeans_iters: int = 10
    quat_bits: int = 8                 #: bits per stored quaternion component, 5..8
    scale_levels: int = 256            #: entries of the log-scale codebook (<= 256)
    color_levels: int = 256            #: entries of the sh0 codebook (<= 256)
    weighted: bool = True              #: weight the SH k-means by opacity x footprint
    sh_degree: int | None = None       #: keep at most this SH degree (None = all)
    codecs: tuple[str, ...] = ("webp", "png")  #: try these per plane, keep the smallest


#: ``--quality`` presets: overrides of `Options`.
PRESETS: dict[str, dict] = {
    "small": {"means_bits": 14, "quat_bits": 7, "scale_levels": 128, "palette_size": 4096, "palette_per": 32,
              "effort": 6},
    "default": {},  # the `Options` defaults
    "high": {"means_bits": 16, "palette_size": 65536, "palette_per": 4, "effort": 6, "kmeans_iters": 15},
}


def preset_options(quality: str, **overrides) -> dict:
    """Profile options for a ``--quality`` preset name, with ``overrides`` applied on top."""
    if quality not in PRESETS:
        raise SogError(f"unknown quality preset {quality!r} (choose from {', '.join(PRESETS)})")
    known = {f.name for f in fields(Options)}
    return {k: v for k, v in {**PRESETS[quality], **overrides}.items() if k in known}


def quantize_uniform(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Map ``x`` (N, C) in [lo, hi] per column to integers 0..2^bits-1 (uint32); error <= step/2."""
    span = np.where(hi > lo, hi - lo, 1.0)
    top = (1 << bits) - 1
    return np.clip(np.rint((x - lo) / span * top), 0, top).astype(np.uint32)


def dequantize_uniform(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of `quantize_uniform`: (N, C) float64."""
    return lo + (hi - lo) * (q.astype(np.float64) / ((1 << bits) - 1))


def splat_weights(splats: Splats) -> np.ndarray:
    """(N,) importance of each Gaussian: opacity x screen footprint (exp of twice the mean log scale)."""
    opacity = torch.sigmoid(splats.opacities.detach().float().cpu())
    area = torch.exp(2 * splats.scales.detach().float().cpu().mean(1).clamp(-30, 10))
    w = (opacity * area).double().numpy()
    cap = np.quantile(w, 0.99) if w.size > 100 else w.max()
    return np.clip(w, cap * 1e-6 + 1e-30, max(cap, 1e-30))


def encode(splats: Splats, width: int, height: int,
           options: Options | None = None, progress=None) -> tuple[dict, dict[str, bytes]]:
    """Encode ``splats`` (already in grid order) into native planes; returns ``(meta, files)``."""
    options = options or Options()
    n = len(splats)
    if width * height < n:
        raise SogError(f"grid {width}x{height} is too small for {n} Gaussians")
    if width > 16383 or height > 16383:
        raise SogError(f"grid {width}x{height} exceeds WebP's 16383-pixel limit")
    if not 8 <= options.means_bits <= 16:
        raise SogError(f"means_bits must be 8..16, got {options.means_bits}")
    if not 5 <= options.quat_bits <= 8 or not 2 <= options.scale_levels <= 256 or not 2 <= options.color_levels <= 256:
        raise SogError("quat_bits must be 5..8 and scale/color levels 2..256")
    if options.sh_degree is not None:
        splats = splats.with_sh_degree(min(options.sh_degree, splats.sh_degree))
    tick = progress or (lambda name: None)
    files: dict[str, bytes] = {}
    codecs_used: dict[str, str] = {}

    def store(name: str, img: np.ndarray) -> None:
        best = None
        for codec in options.codecs:
            data = encode_image(img, codec, options.effort)
            if best is None or len(data) < len(best[1]):
                best = (codec, data)
        filename = name + CODECS[best[0]].extension
        files[filename] = best[1]
        codecs_used[name] = filename
        tick(name)

    def plane(name: str, values: np.ndarray) -> None:
        c = values.shape[1]
        img = np.zeros((width * height, c), np.uint8)
        img[:n] = values
        if n < width * height:  # pad with the last Gaussian's texel: no edge for the predictor
            img[n:] = values[-1]
        store(name, img.reshape(height, width, c))

    bits = options.means_bits
    lmeans = log_transform(splats.means.detach().cpu().double().numpy())
    mins, maxs = lmeans.min(0), lmeans.max(0)
    q = quantize_uniform(lmeans, mins, maxs, bits)
    plane("means_u", (q >> (bits - 8)).astype(np.uint8))
    if bits > 8:
        plane("means_l", (q & ((1 << (bits - 8)) - 1)).astype(np.uint8))

    quats = pack_quats(splats.quats.detach().cpu().double().numpy())
    drop = 8 - options.quat_bits  # coarser quaternions: keep the top bits, decode at the bin centre
    quats[:, :3] = np.minimum((quats[:, :3] >> drop << drop) + ((1 << drop) >> 1), 255)
    plane("quats", quats)

    scale_cb, scale_idx = codebook_1d(splats.scales.detach().cpu().numpy(), options.scale_levels,
                                      seed=options.seed)
    plane("scales", scale_idx)

    sh0_cb, sh0_idx = codebook_1d(splats.sh0.detach().cpu().numpy().reshape(n, 3), options.color_levels,
                                  seed=options.seed)
    opacity = torch.sigmoid(splats.opacities.detach().cpu().double()).numpy()
    alpha = np.clip(np.rint(opacity * 255), 0, 255).astype(np.uint8)[:, None]
    plane("sh0", np.concatenate([sh0_idx, alpha], 1))

    meta = {
        "profile": "sog", "version": VERSION, "count": n, "width": width, "height": height,
        "asset": {"generator": "sog (native profile)"},
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "bits": bits},
        "scales": {"codebook": scale_cb.tolist()},
        "sh0": {"codebook": sh0_cb.tolist()},
        "files": {},
    }

    k = splats.shN.shape[1]
    if k:
        flat = splats.shN.detach().cpu().float().transpose(1, 2).reshape(n, 3 * k)
        size = min(options.palette_size or default_palette_size(n), 65536)
        if options.palette_per > 0:
            size = min(size, 1 << max(8, int(math.log2(max(n // options.palette_per, 1)))))
        weights = torch.from_numpy(splat_weights(splats)) if options.weighted else None
        centroids, labels = kmeans(flat, size, options.kmeans_iters, options.seed, weights)
        centroids, labels = order_palette(centroids, labels)
        tick("shN palette")
        c = centroids.shape[0]
        cb, cidx = codebook_1d(centroids.numpy(), seed=options.seed)  # (c, 3K) uint8
        rows = math.ceil(c / 64)
        pal = np.zeros((rows * 64, 3 * k), np.uint8)
        pal[:c] = cidx
        store("shN_centroids", pal.reshape(rows, 64, 3 * k).transpose(0, 2, 1).reshape(rows * 3 * k, 64, 1)
              .repeat(3, axis=2))
        lab = labels.numpy().astype(np.uint32)
        if c <= 256:
            plane("shN_labels", lab.astype(np.uint8)[:, None].repeat(3, axis=1))
        else:
            plane("shN_labels", np.stack([lab >> 8, lab & 0xFF, np.zeros_like(lab)], 1).astype(np.uint8))
        meta["shN"] = {"count": int(c), "bands": splats.sh_degree, "codebook": cb.tolist()}
    meta["files"] = codecs_used  # plane name -> file name (its extension names the codec)
    return meta, files


def order_palette(centroids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder palette entries (k, D) along their first principal axis; relabel (N,) to match."""
    if centroids.shape[0] < 2:
        return centroids, labels
    centred = centroids - centroids.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    order = torch.argsort(centred @ v[0])
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return centroids[order], rank[labels]


def decode(meta: dict, read) -> Splats:
    """Decode native planes. ``read(filename) -> bytes`` fetches a file named in ``meta['files']``."""
    try:
        if meta.get("version") != VERSION:
            raise SogError(f"unsupported native sog version {meta.get('version')!r} (expected {VERSION})")
        n = int(meta["count"])
        if n <= 0:
            raise SogError("sog file holds zero Gaussians")
        names = meta["files"]

        def plane(name: str, channels: int) -> np.ndarray:
            if name not in names:
                raise SogError(f"sog meta.json lists no {name} plane")
            img = decode_image(read(names[name]), names[name], channels)
            if img.shape[0] * img.shape[1] < n:
                raise SogError(f"{name}: {img.shape[1]}x{img.shape[0]} image is too small for {n} Gaussians")
            return img.reshape(-1, channels)[:n]

        bits = int(meta["means"]["bits"])
        q = plane("means_u", 3).astype(np.uint32) << (bits - 8)
        if bits > 8:
            q |= plane("means_l", 3).astype(np.uint32)
        mins, maxs = np.asarray(meta["means"]["mins"], np.float64), np.asarray(meta["means"]["maxs"], np.float64)
        means = inv_log_transform(dequantize_uniform(q, mins, maxs, bits))

        quats = unpack_quats(plane("quats", 4))
        scales = np.asarray(meta["scales"]["codebook"], np.float32)[plane("scales", 3)]
        sh0_tex = plane("sh0", 4)
        sh0 = np.asarray(meta["sh0"]["codebook"], np.float32)[sh0_tex[:, :3]]
        alpha = np.clip(sh0_tex[:, 3].astype(np.float64) / 255, 1e-6, 1 - 1e-6)
        opacities = np.log(alpha / (1 - alpha))

        shn_meta = meta.get("shN")
        bands = int(shn_meta["bands"]) if shn_meta else 0
        k = SH_REST_COUNT.get(bands)
        if k is None:
            raise SogError(f"unsupported shN bands {bands}")
        shN = np.zeros((n, k, 3), np.float32)
        if k:
            c = int(shn_meta["count"])
            cb = np.asarray(shn_meta["codebook"], np.float32)
            cent = decode_image(read(names["shN_centroids"]), names["shN_centroids"], 3)[..., 0]
            rows = cent.shape[0] // (3 * k)
            if cent.shape[1] != 64 or rows * 64 < c:
                raise SogError(f"shN_centroids image is {cent.shape[1]}x{cent.shape[0]}, too small for {c} entries")
            idx = cent[:rows * 3 * k].reshape(rows, 3 * k, 64).transpose(0, 2, 1).reshape(rows * 64, 3 * k)[:c]
            palette = cb[idx].reshape(c, 3, k).transpose(0, 2, 1)  # (c, K, 3)
            lab = plane("shN_labels", 3).astype(np.int64)
            labels = lab[:, 0] if c <= 256 else (lab[:, 0] << 8) | lab[:, 1]
            if int(labels.max()) >= c:
                raise SogError(f"shN_labels refers to palette entry {int(labels.max())} of {c}")
            shN = palette[labels]
    except SogError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SogError(f"malformed sog meta.json ({type(exc).__name__}: {exc})") from None

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    return Splats(means=t(means), scales=t(scales), quats=t(quats), opacities=t(opacities),
                  sh0=t(sh0).reshape(n, 1, 3), shN=t(shN))
