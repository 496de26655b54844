"""The native ``sog`` profile: SOG-style planes with the choices PlayCanvas's layout fixes left open.

Same idea as SOG v2 (one texel per Gaussian, row-major, Gaussian i at texel i), but:

* positions use ``means_bits`` (8..16) bits per axis; the high byte and the remaining low bits
  are separate RGB planes, so fewer bits make the noisy low plane cheaper;
* the log-scale codebook is fitted by Lloyd's algorithm weighted by (opacity × scale²)^``scale_weight``
  (`fit_levels`): the large, opaque Gaussians that cover pixels get the closest levels, and the
  scales plane gets fewer distinct small values (measured: +4 dB PSNR and -30% scales bytes on the
  .splat scenes at weight 2);
* the SH palette size is a setting, its k-means is weighted by opacity × footprint, and the
  palette is ordered along its first principal axis so neighbouring labels hold similar
  entries (a smoother label plane); a source that is already palettised (at most N /
  ``exact_palette_per`` distinct SH rows, e.g. a SOG) keeps its palette exactly;
* optional ``tolerance``: per-Gaussian coarser positions/rotations for faint or round Gaussians
  (off by default: on the shared scenes uniform ``means_bits`` gave more PSNR per byte);
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
#: deflate the .sog zip's meta.json entry (its codebooks are long lists of floats)
COMPRESS_META = True


@dataclass
class Options:
    """Encoder settings for the native profile (stored choices are recorded in meta.json)."""

    effort: int = 4                    #: image-codec effort 0..6
    seed: int = 0
    means_bits: int = 15               #: bits per position axis, 8..16 (15: PSNR >= splat-transform's on plant)
    palette_size: int | None = 16384   #: cap on SH palette entries; None = splat-transform's rule
    palette_per: int = 16              #: >0: at most N / palette_per entries (a power of two, >= 256)
    kmeans_iters: int = 10
    exact_palette_per: int = 4         #: >0: SH rows with at most N / this distinct values (<= 65536) are kept exactly
    quat_bits: int = 8                 #: bits per stored quaternion component, 5..8
    scale_levels: int = 256            #: entries of the log-scale codebook (<= 256)
    color_levels: int = 256            #: entries of the sh0 codebook (<= 256)
    weighted: bool = True              #: weight the SH k-means by opacity x footprint
    sh_degree: int | None = None       #: keep at most this SH degree (None = all)
    scale_weight: float = 2.0          #: scale codebook weights values by (opacity x scale^2)^this (0: unweighted)
    color_weight: float = 0.0          #: sh0 codebook weights colours by (opacity x footprint)^this (0: unweighted)
    tolerance: float | None = None     #: render-error budget in uniform position steps (None: uniform bits)
    codecs: tuple[str, ...] = ("webp", "png")  #: try these per plane, keep the smallest


#: ``--quality`` presets: overrides of `Options`.
PRESETS: dict[str, dict] = {
    # ~45 dB on playbot at >10x under its PLY: 13-bit positions, a smaller SH palette, no exact-palette rule.
    # palette_per 12 keeps playbot's 32,768 entries (N/16 would give 16,384: 44.88 dB) without giving small
    # scenes a larger palette than the default (per 8 made kacytran's small file 10 % larger than its default)
    "small": {"means_bits": 13, "palette_size": 32768, "palette_per": 12, "exact_palette_per": 0, "effort": 6},
    "default": {},  # the `Options` defaults
    "high": {"means_bits": 16, "palette_size": 65536, "palette_per": 4, "effort": 6, "kmeans_iters": 15,
             "scale_weight": 1.0},
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


def fit_levels(values: np.ndarray, k: int = 256, weights: np.ndarray | None = None, bins: int = 1 << 16,
               iters: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """A ``k``-level scalar codebook for ``values`` (any shape) by Lloyd's algorithm on a fine histogram.

    Starts from the asymptotically optimal level density (the value density to the power 1/3), so the
    sparse tails, which hold the largest Gaussians, get levels too; runs to convergence on ``bins`` bins
    (cheap), then labels every value exactly. Returns ``(codebook (k,) float32 ascending, labels uint8 of
    values.shape)``; exact when there are at most ``k`` distinct values. ``weights`` (values' shape) weight
    the squared error."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    distinct = np.unique(flat.astype(np.float32))
    if len(distinct) <= k:
        return codebook_1d(values, k)
    lo, hi = float(flat.min()), float(flat.max())
    edges = np.linspace(lo, hi, bins + 1)
    w = None if weights is None else np.asarray(weights, np.float64).reshape(-1)
    hist = np.histogram(flat, edges, weights=w)[0]
    sums = np.histogram(flat, edges, weights=flat if w is None else flat * w)[0]
    keep = hist > 0
    x, h = sums[keep] / hist[keep], hist[keep]            # (B,) bin means and masses
    cdf = np.cumsum(np.cbrt(h))
    levels = np.interp((np.arange(k) + 0.5) / k * cdf[-1], cdf, x)
    for _ in range(iters):
        lab = np.searchsorted((levels[1:] + levels[:-1]) / 2, x)
        mass = np.bincount(lab, weights=h, minlength=k)
        new = np.where(mass > 0, np.bincount(lab, weights=h * x, minlength=k) / np.maximum(mass, 1e-300), levels)
        new.sort()
        if np.allclose(new, levels, rtol=0, atol=1e-9):
            break
        levels = new
    levels[0], levels[-1] = min(levels[0], lo), max(levels[-1], hi) if mass[-1] <= 0 else levels[-1]
    codebook = np.sort(levels).astype(np.float32)
    labels = np.searchsorted((codebook[1:].astype(np.float64) + codebook[:-1]) / 2, flat)
    return codebook, labels.astype(np.uint8 if k <= 256 else np.int64).reshape(np.shape(values))


def scale_weights(log_scales: np.ndarray, opacities: torch.Tensor, power: float) -> np.ndarray:
    """(N, 3) weights of log-scale values in their codebook fit: (opacity x s^2)^power per value, so the
    largest, most opaque Gaussians (the ones that cover pixels) get the closest levels."""
    alpha = torch.sigmoid(opacities.detach().cpu().double()).numpy()[:, None]
    logw = power * (np.log(np.clip(alpha, 1e-6, 1)) + 2 * log_scales)
    return np.exp(np.clip(logw - logw.max(), -60, 0))


def error_budget(splats: Splats, step_world: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-Gaussian error bounds that spend a render-error budget evenly.

    A Gaussian of opacity a moved by d changes a render by a squared error of about a^2 d^2 times
    its anisotropy s_max/s_min (capped at 16: very thin ones are widened to a pixel on screen); turned
    by an angle t it changes it by about a^2 t^2 (s_max^2 - s_min^2)^2 / (s_max s_min). Setting
    both equal to ``(tolerance * step)^2`` (``step_world`` (N,): one uniform position step at that
    Gaussian, world units) gives ``(position bound (N,) world units, angle bound (N,) radians)``.
    A fully opaque round Gaussian keeps its uniform position step; faint ones get coarser values.
    """
    log_s = splats.scales.detach().cpu().double().numpy()
    s = np.exp(log_s)
    s_min, s_max = s.min(1), s.max(1)
    alpha = np.clip(torch.sigmoid(splats.opacities.detach().cpu().double()).numpy(), 1 / 255, 1)
    budget = tolerance * step_world
    aniso = np.minimum(s_max / np.maximum(s_min, 1e-30), 16.0)
    pos = budget / (alpha * np.sqrt(aniso))
    spread = (s_max ** 2 - s_min ** 2) / np.sqrt(np.maximum(s_max * s_min, 1e-60))
    angle = budget / (alpha * np.maximum(spread, 1e-30))
    return pos, angle


def coarsen_means(q: np.ndarray, lmeans: np.ndarray, mins: np.ndarray, maxs: np.ndarray, bits: int,
                  allowed: np.ndarray) -> np.ndarray:
    """Per Gaussian and axis, round ``q`` (N, 3) to the coarsest power-of-two multiple of the step whose
    error stays within ``allowed`` (N,) world units; only the low plane's bits are dropped.

    The decoder is unchanged (it reads plain ``bits``-bit values); the dropped low bits are zeros, so
    the ``means_l`` plane holds fewer distinct values and compresses better. ``lmeans`` (N, 3) are the
    log-transformed positions that ``q`` quantises over [mins, maxs]."""
    top = (1 << bits) - 1
    span = np.where(maxs > mins, maxs - mins, 1.0)
    step_world = span / top * np.exp(np.abs(lmeans))       # d expm1(|y|)/dy: world size of one step
    drop = np.floor(np.log2(np.maximum(2 * allowed[:, None] / step_world, 1e-30))).astype(np.int64)
    drop = np.clip(drop, 0, bits - 8)                       # error 2^(d-1) steps <= allowed
    unit = (1 << drop).astype(np.float64)
    exact = (lmeans - mins) / span * top
    coarse = np.rint(exact / unit) * unit
    return np.where((drop > 0) & (coarse <= top), coarse, q).astype(np.uint32)  # at the top edge: keep q


#: smallest-three component step of an 8-bit code; a component error e turns the rotation by about 2e
_QUAT_STEP = 2 / (255 * math.sqrt(2))


def coarsen_quats(texels: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Round smallest-three texels (N, 4) to coarser codes where ``angle`` (N,) radians allows; a
    Gaussian whose allowed angle exceeds what 8 dropped bits cost gets the constant identity texel."""
    drop = np.clip(np.floor(np.log2(np.maximum(angle / _QUAT_STEP, 1e-30))), 0, 8).astype(np.int64)
    out = texels.copy()
    sel = (drop > 0) & (drop < 8)
    if sel.any():
        u = (1 << drop[sel])[:, None]
        out[sel, :3] = np.minimum(np.rint(texels[sel, :3] / u) * u, 255).astype(np.uint8)
    out[drop >= 8] = np.array([128, 128, 128, 252], np.uint8)  # identity: the rotation does not show
    return out


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
    if options.tolerance is not None:
        step = (np.where(maxs > mins, maxs - mins, 0.0) / ((1 << bits) - 1) * np.exp(np.abs(lmeans))).mean(1)
        pos_bound, angle_bound = error_budget(splats, step, options.tolerance)
        if bits > 8:
            q = coarsen_means(q, lmeans, mins, maxs, bits, pos_bound)
    plane("means_u", (q >> (bits - 8)).astype(np.uint8))
    if bits > 8:
        plane("means_l", (q & ((1 << (bits - 8)) - 1)).astype(np.uint8))

    quats = pack_quats(splats.quats.detach().cpu().double().numpy())
    drop = 8 - options.quat_bits  # coarser quaternions: keep the top bits, decode at the bin centre
    quats[:, :3] = np.minimum((quats[:, :3] >> drop << drop) + ((1 << drop) >> 1), 255)
    if options.tolerance is not None:
        quats = coarsen_quats(quats, angle_bound)
    plane("quats", quats)

    log_scales = splats.scales.detach().cpu().double().numpy()
    sw = scale_weights(log_scales, splats.opacities, options.scale_weight) if options.scale_weight else None
    cw = np.repeat((splat_weights(splats) ** options.color_weight)[:, None], 3, 1) if options.color_weight else None
    scale_cb, scale_idx = fit_levels(log_scales, options.scale_levels, weights=sw)
    plane("scales", scale_idx)

    sh0_cb, sh0_idx = codebook_1d(splats.sh0.detach().cpu().numpy().reshape(n, 3), options.color_levels,
                                  weights=cw, seed=options.seed)
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
        if options.exact_palette_per > 0:  # an already palettised source (e.g. a SOG): keep its palette
            distinct = torch.unique(flat, dim=0).shape[0]
            if distinct <= min(n // options.exact_palette_per, 65536):
                size = max(size, distinct)
        weights = torch.from_numpy(splat_weights(splats)) if options.weighted else None
        centroids, labels = kmeans(flat, size, options.kmeans_iters, options.seed, weights)
        centroids, labels = order_palette(centroids, labels)
        tick("shN palette")
        c = centroids.shape[0]
        cb, cidx = codebook_1d(centroids.numpy(), seed=options.seed)  # (c, 3K) uint8
        pw = 64  # entries per row: 64, or wider when 3K rows per 64 entries would pass WebP's height limit
        while math.ceil(c / pw) * 3 * k > 16383:
            pw *= 2
        rows = math.ceil(c / pw)
        pal = np.zeros((rows * pw, 3 * k), np.uint8)
        pal[:c] = cidx
        store("shN_centroids", pal.reshape(rows, pw, 3 * k).transpose(0, 2, 1).reshape(rows * 3 * k, pw, 1)
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
            rows, pw = cent.shape[0] // (3 * k), cent.shape[1]
            if pw % 64 or rows * pw < c:
                raise SogError(f"shN_centroids image is {cent.shape[1]}x{cent.shape[0]}, too small for {c} entries")
            idx = cent[:rows * 3 * k].reshape(rows, 3 * k, pw).transpose(0, 2, 1).reshape(rows * pw, 3 * k)[:c]
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
