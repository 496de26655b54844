"""The native ``sog`` profile: SOG-style planes with the choices PlayCanvas's layout fixes left open.

Same idea as SOG v2 (one texel per Gaussian, row-major, Gaussian i at texel i), but:

* positions use ``means_bits`` (8..16) bits per axis; the high byte and the remaining low bits
  are separate RGB planes, so fewer bits make the noisy low plane cheaper; they are quantised on a uniform
  grid unless a few far Gaussians stretch the box (`position_transform`; then after SOG's log transform);
* every rotation is rewritten as its smallest-angle equivalent (`rotation.canonical_rotations`: one of
  24 axis relabellings, scales permuted to match, the same covariance) and stored as its Gibbs vector
  ``(x, y, z) / w``, whose components then lie in ±tan 22.5°: a code step turns a Gaussian less than a
  smallest-three component's step of the same bits, with no largest-component tag (3 channels, not 4);
* the log-scale codebook's levels are spaced for entropy-coded labels (`quantize.density_levels`, point
  density p^0.15 w^0.3 with w = (opacity × scale²)^``scale_weight``): the large, opaque Gaussians that cover
  pixels get the closest levels, and the many small ones few. Lloyd's algorithm (`fit_levels`, still there
  with ``scale_density=None``) spaces them for labels of fixed length and crowds them where values are dense,
  which makes the labels expensive; more than 256 levels store the labels' low bits in a ``scales_l`` plane;
* the sh0 colour codebook's levels have point density p^0.15 (``color_density``), for the same reason;
* the SH palette size is a setting, its k-means is weighted by opacity × footprint, and the
  palette is ordered along its first principal axis so neighbouring labels hold similar
  entries (a smoother label plane); a source that is already palettised (at most N /
  ``exact_palette_per`` distinct SH rows, e.g. a SOG) keeps its palette exactly;
* optional ``tolerance``: per-Gaussian coarser positions/rotations for faint or round Gaussians (off by default);
* an optional SH band limit (``sh_degree``);
* importance layers (``layers``, version 3): the compressor (`sog.pipeline`) measures how much of the rendered
  pictures each Gaussian makes (`sog.render.importance`), the layer plan (`sog.codec.layers`) splits them into up
  to ``layers`` layers, the pipeline sorts each onto its own grid, and the less important layers are stored with
  coarser settings, per attribute by how much less the renders change there (`layer_options`, `encode_layers`).
  The file holds one plain (version-5) meta per layer under ``"layers"`` and planes named ``l<k>_<plane>``;
  decoding concatenates the layers;
* each plane is stored with the smallest of the lossless codecs tried (``codecs``), no alpha
  channel where none is needed.

Codebooks in ``meta.json`` are integer steps on a fine grid (`codebook_json`). ``meta.json`` carries
``"profile": "sog"`` and ``"version": 5`` (of this profile; versions 4, with one grey palette row per coefficient
and colour, 2, with float codebooks and log positions, and 1, with smallest-three rotations, are still read), or
``"version": 3`` and a list of such ``"layers"``. The layout is specified in docs/formats.md; why, and what it
measured, in docs/profiles.md.

Presets (`PRESETS`, the CLI's ``--quality``): ``small``, ``default``, ``high``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from ..errors import SogError
from ..metrics import SMALL_TARGET, RateTarget
from ..splats import SH_REST_COUNT, Splats
from .image import CODECS, decode_image, encode_image
from . import native_legacy as legacy
from .base import Layer, Profile
from .layers import layer_drops, layer_options, plan_importance_layers, wants_layers
from .options import CodecOptions, check_options
from .planes import colour_and_opacity, sh_rest_count
from .palette import band_limited, fit_sh_palette, splat_weights, stored_palette
from .rotation import GIBBS_MAX, canonical_rotations, gibbs_levels, pack_gibbs, unpack_gibbs
from .quantize import codebook_1d, density_levels, label_dtype, nearest_sorted, scale_weights
from .v2 import inv_log_transform, log_transform

#: 5: the SH palette image holds a coefficient's three colours in one RGB texel (``shN.layout`` "rgb", `palette_image`);
#: 4: positions may be linear (``"transform"``) and codebooks are integer steps (`codebook_json`); 2: rotations as
#: canonical Gibbs vectors; 1: smallest-three. All are still read; a reader of 4 refuses 5 instead of misreading it.
VERSION = 5
READ_VERSIONS = (1, 2, 4, VERSION)  #: plain metas `decode` reads
LAYERED_VERSION = 3  #: several importance layers, each a plain meta of its own under "layers"
GENERATOR = "sog (native profile)"  #: meta.json "asset" / "generator"
#: deflate the .sog zip's meta.json entry (its codebooks are long lists of floats)
COMPRESS_META = True


#: the ladder of the rate search (`sog.rate`): bit depths and levels, finest (largest file) first, one setting
#: coarser per step, in the order that costs the least PSNR per byte saved on the shared scenes; index
#: `DEFAULT_LEVEL` is the default (docs/profiles.md)
LEVELS: list[dict] = [
    {"means_bits": m, "quat_bits": q, "scale_levels": s, "color_levels": c, "sh_levels": h} for m, q, s, c, h in [
        (16, 8, 2048, 256, 256), (15, 8, 2048, 256, 256), (15, 7, 2048, 256, 256), (15, 7, 1024, 256, 256),
        (15, 7, 1024, 256, 128), (14, 7, 1024, 256, 128), (14, 7, 1024, 181, 128), (14, 7, 512, 181, 128),
        (14, 7, 512, 128, 128),
        (14, 6, 512, 128, 128), (13, 6, 512, 128, 128), (13, 6, 512, 64, 128), (12, 6, 512, 64, 128),
        (12, 6, 256, 64, 128), (12, 5, 256, 64, 128), (11, 5, 256, 64, 128), (11, 5, 256, 32, 128),
        (11, 4, 256, 32, 128), (10, 4, 256, 32, 128), (10, 4, 128, 32, 128), (10, 4, 128, 32, 64)]
]
#: the rung of `LEVELS` the `Options` defaults are (`scripts/tune_native.py`)
DEFAULT_LEVEL = 4


@dataclass(kw_only=True)
class Options(CodecOptions):
    """Encoder settings for the native profile (stored choices are recorded in meta.json); the shared ones are
    `CodecOptions`'. The defaults are rung `DEFAULT_LEVEL` of `LEVELS` with three importance layers,
    chosen by ``scripts/tune_native.py`` on tuning views only (docs/profiles.md)."""

    means_bits: float = LEVELS[DEFAULT_LEVEL]["means_bits"]    #: bits per position axis, 8..16
    quat_bits: float = LEVELS[DEFAULT_LEVEL]["quat_bits"]      #: bits per rotation component (Gibbs vector), 4..8
    scale_levels: int = LEVELS[DEFAULT_LEVEL]["scale_levels"]  #: scale codebook entries, 2..65536 (> 256: low plane)
    color_levels: int = LEVELS[DEFAULT_LEVEL]["color_levels"]  #: sh0 codebook entries, 2..256
    sh_levels: int = LEVELS[DEFAULT_LEVEL]["sh_levels"]        #: SH palette coefficient codebook entries, 2..256
    opacity_bits: int = 8              #: bits of opacity (its own plane), 4..8
    color_weight: float = 0.0          #: sh0 codebook weights colours by (opacity x footprint)^this (0: unweighted)
    #: None: Lloyd's algorithm (`fit_levels`) instead of `CodecOptions.scale_density`'s point density
    scale_density: tuple[float, float] | None = (0.15, 0.3)
    #: (0, 0): evenly spaced; None: k-means (`codebook_1d`)
    color_density: tuple[float, float] | None = (0.15, 0.0)
    tolerance: float | None = None     #: render-error budget in uniform position steps (None: uniform bits)
    codecs: tuple[str, ...] = ("webp", "png")  #: try these per plane, keep the smallest
    means_transform: str = "auto"      #: positions quantised after "log", "linear" or "auto" (`position_transform`)
    layers: int = 3                    #: split the Gaussians into up to this many importance layers (1: one grid)


#: ``--quality`` presets: overrides of `Options`.
PRESETS: dict[str, dict] = {
    # the bit depths come from the rate search (`PRESET_TARGET`); an SH palette of at most N/12 entries unless the
    # source is already palettised
    "small": {"palette_size": 32768, "palette_per": 12},
    "default": {},  # the `Options` defaults
    "high": {"means_bits": 16, "quat_bits": 8, "scale_levels": 2048, "color_levels": 256, "sh_levels": 256,
             "palette_size": 65536, "palette_per": 4, "kmeans_iters": 15},
}

#: presets that are a quality target: the smallest file whose tuning views (`sog.rate`, on
#: `sog.render.views.search_cameras`) reach this `RateTarget` against the input's renders; no fixed bit depths suit
#: every scene. "small" "looks the same": 40 dB at the 10th-percentile view, 35 dB at the worst, plus a guard
#: (`sog.metrics.SMALL_TARGET`, docs/profiles.md)
PRESET_TARGET: dict[str, RateTarget] = {"small": SMALL_TARGET}


def preset_options(quality: str, **overrides) -> dict:
    """Profile options for a ``--quality`` preset name, with ``overrides`` applied on top."""
    if quality not in PRESETS:
        raise SogError(f"unknown quality preset {quality!r} (choose from {', '.join(PRESETS)})")
    known = {f.name for f in fields(Options)}
    return {k: v for k, v in {**PRESETS[quality], **overrides}.items() if k in known}


def level_count(bits: float) -> int:
    """Quantisation levels for a bit depth that may be fractional: ``round(2^bits)`` (13.5 bits: 11,585 levels, half
    a bit less per value than 14). Half bits let the rate search and the layers take steps half as big."""
    return int(round(2.0 ** bits))


def quantize_uniform(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> np.ndarray:
    """Map ``x`` (N, C) in [lo, hi] per column to integers 0..levels-1 (uint32); error <= step/2."""
    span = np.where(hi > lo, hi - lo, 1.0)
    top = levels - 1
    return np.clip(np.rint((x - lo) / span * top), 0, top).astype(np.uint32)


def dequantize_uniform(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: int) -> np.ndarray:
    """Inverse of `quantize_uniform`: (N, C) float64."""
    return lo + (hi - lo) * (q.astype(np.float64) / (levels - 1))


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
    labels = nearest_sorted(codebook.astype(np.float64), flat)
    return codebook, label_dtype(labels, k).reshape(np.shape(values))


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


#: how positions are mapped before uniform quantisation: ``log`` (``sign(x) log(1 + |x|)``, SOG's: steps grow
#: with the distance from the origin, for unbounded scenes) or ``linear`` (the same step everywhere)
POSITION_TRANSFORMS = ("log", "linear")


def position_transform(means: np.ndarray, choice: str = "auto", stretch: float = 4.0) -> str:
    """``choice``, or for ``"auto"``: ``linear``, unless a few far Gaussians stretch the bounding box (on some axis
    the whole span is more than ``stretch`` times the span of the 1st to 99th percentile): then ``log``, which
    keeps fine steps near the centre, as SOG does (elsewhere linear steps give more PSNR per byte, most on scenes
    far from the origin, where the log's steps are coarse). ``means`` (N, 3)."""
    if choice != "auto":
        if choice not in POSITION_TRANSFORMS:
            raise SogError(f"means_transform must be auto, {' or '.join(POSITION_TRANSFORMS)}, not {choice!r}")
        return choice
    lo, hi = np.quantile(means, [0.01, 0.99], axis=0)
    span = means.max(0) - means.min(0)
    return "log" if bool(np.any(span > stretch * np.maximum(hi - lo, 1e-12))) else "linear"


def coarsen_means(q: np.ndarray, lmeans: np.ndarray, mins: np.ndarray, maxs: np.ndarray, levels: int,
                  allowed: np.ndarray) -> np.ndarray:
    """Per Gaussian and axis, round ``q`` (N, 3) to the coarsest power-of-two multiple of the step whose
    error stays within ``allowed`` (N,) world units; only the low plane's bits are dropped.

    The decoder is unchanged (it reads plain values of ``levels`` levels); the dropped low bits are zeros, so
    the ``means_l`` plane holds fewer distinct values and compresses better. ``lmeans`` (N, 3) are the
    log-transformed positions that ``q`` quantises over [mins, maxs]."""
    top = levels - 1
    bits = label_bits(levels)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    step_world = span / top * np.exp(np.abs(lmeans))       # d expm1(|y|)/dy: world size of one step
    drop = np.floor(np.log2(np.maximum(2 * allowed[:, None] / step_world, 1e-30))).astype(np.int64)
    drop = np.clip(drop, 0, bits - 8)                       # error 2^(d-1) steps <= allowed
    unit = (1 << drop).astype(np.float64)
    exact = (lmeans - mins) / span * top
    coarse = np.rint(exact / unit) * unit
    return np.where((drop > 0) & (coarse <= top), coarse, q).astype(np.uint32)  # at the top edge: keep q


def coarsen_quats(codes: np.ndarray, angle: np.ndarray, levels: int) -> np.ndarray:
    """Round Gibbs codes (N, 3) (`pack_gibbs`) to coarser multiples of the step around the identity where
    ``angle`` (N,) radians allows; a Gaussian whose allowed angle exceeds the whole range gets the identity."""
    top = levels - 1
    bits = math.log2(levels + 1)
    mid = top // 2
    step = 4 * GIBBS_MAX / top                              # radians per code step near the identity
    drop = np.clip(np.floor(np.log2(np.maximum(angle / step, 1e-30))), 0, bits).astype(np.int64)
    out = codes.astype(np.int64)
    u = (1 << drop)[:, None]
    out = np.clip(np.rint((out - mid) / u) * u + mid, 0, top)
    out[drop >= bits - 1] = mid                             # identity: the rotation does not show
    return out.astype(np.uint8)


#: a codebook in meta.json is stored on a grid of this many steps over its range (`codebook_json`)
CODEBOOK_STEPS = 1 << 16


def codebook_json(values: np.ndarray) -> dict:
    """An ascending codebook (k,) for meta.json: ``{"first", "unit", "steps"}``, entry i being ``first + unit *
    (steps[0] + ... + steps[i])``, on a grid of `CODEBOOK_STEPS` steps over its range (an error of at most
    1/131072 of the range: far below the codebook's own spacing). Small integer steps deflate to about a byte
    each where float decimals took four or five."""
    v = np.asarray(values, np.float64).reshape(-1)
    first, last = float(np.float32(v.min())), float(v.max())
    unit = float(np.float32((last - first) / CODEBOOK_STEPS)) if last > first else 1.0
    grid = np.maximum.accumulate(np.rint((v - first) / unit).astype(np.int64))
    return {"first": first, "unit": unit, "steps": np.diff(grid, prepend=0).tolist()}


def gridded(codebook: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``codebook`` (k,) ascending as meta.json will hold it (`codebook_json`), and ``values`` (any shape)
    labelled with its nearest entry: ``(codebook (k,) float32, labels of values.shape, uint8 for k <= 256)``."""
    cb = codebook_values(codebook_json(codebook))
    labels = nearest_sorted(cb.astype(np.float64), np.asarray(values, np.float64).reshape(-1))
    return cb, label_dtype(labels, len(cb)).reshape(np.shape(values))


def codebook_values(stored) -> np.ndarray:
    """(k,) float32 values of a meta.json codebook: a `codebook_json` dict, or a plain list (older files)."""
    if isinstance(stored, dict):
        steps = np.asarray(stored["steps"], np.int64)
        return (float(stored["first"]) + float(stored["unit"]) * np.cumsum(steps)).astype(np.float32)
    return legacy.codebook_list(stored)


def smallest_image(img: np.ndarray, options: Options) -> tuple[str, bytes]:
    """``(extension, bytes)`` of the smallest lossless encoding of ``img`` (H, W, C) among ``options.codecs``."""
    best = None
    for codec in options.codecs:
        data = encode_image(img, codec, options.effort)
        if best is None or len(data) < len(best[1]):
            best = (CODECS[codec].extension, data)
    return best


def palette_image(centroids: torch.Tensor, k: int, seed: int = 0, levels: int = 256) -> tuple[dict, np.ndarray]:
    """SH palette (c, 3K) -> ``({"count", "codebook", "layout"}, image (rows, pw·K, 3) uint8)``: indices into a
    codebook of ``levels`` values; entry e's coefficient i is the RGB texel (e // pw, (e % pw)·K + i) holding its
    three colours (``layout`` "rgb": the image codec's colour transforms see the channels of one coefficient
    together, unlike version 4's one grey row per coefficient and colour), 64 entries per row (wider when the rows
    would pass WebP's height limit)."""
    c = centroids.shape[0]
    cb, cidx = gridded(codebook_1d(centroids.numpy(), levels, seed=seed)[0], centroids.numpy())  # (c, 3K) uint8
    pw = 64
    while math.ceil(c / pw) > 16383:
        pw *= 2
    rows = math.ceil(c / pw)
    pal = np.zeros((rows * pw, k, 3), np.uint8)
    pal[:c] = cidx.reshape(c, 3, k).transpose(0, 2, 1)
    return {"count": int(c), "codebook": codebook_json(cb), "layout": "rgb"}, pal.reshape(rows, pw * k, 3)


class PlaneWriter:
    """The planes of one ``width`` x ``height`` grid of ``n`` Gaussians as they are stored: each image the smallest of
    ``options.codecs``, padded past ``n`` with the last Gaussian's texel (no edge for the predictor). ``files``:
    file name -> bytes, ``names``: plane name -> file name (meta.json's ``"files"``), in the order stored."""

    def __init__(self, width: int, height: int, n: int, options: Options, progress=None):
        self.width, self.height, self.n, self.options = width, height, n, options
        self.tick = progress or (lambda name: None)
        self.files: dict[str, bytes] = {}
        self.names: dict[str, str] = {}

    def store(self, name: str, img: np.ndarray) -> None:
        """Store image ``img`` (H, W, C) uint8 as plane ``name``."""
        extension, data = smallest_image(img, self.options)
        self.files[name + extension] = data
        self.names[name] = name + extension
        self.tick(name)

    def plane(self, name: str, values: np.ndarray) -> None:
        """Store ``values`` (N, C) uint8, Gaussian i at texel i, as plane ``name``."""
        c = values.shape[1]
        img = np.zeros((self.width * self.height, c), np.uint8)
        img[:self.n] = values
        if self.n < self.width * self.height:
            img[self.n:] = values[-1]
        self.store(name, img.reshape(self.height, self.width, c))

    def split_plane(self, high: str, low: str, values: np.ndarray, bits: int) -> None:
        """``bits``-bit integers (N, 3): the top 8 bits in plane ``high``, any rest in plane ``low``."""
        self.plane(high, (values >> (bits - 8)).astype(np.uint8))
        if bits > 8:
            self.plane(low, (values & ((1 << (bits - 8)) - 1)).astype(np.uint8))


class PlaneReader:
    """The planes of one grid of ``n`` Gaussians named in ``names`` (meta.json's ``"files"``), fetched by ``read``."""

    def __init__(self, n: int, names: dict, read):
        self.n, self.names, self.read = n, names, read

    def plane(self, name: str, channels: int) -> np.ndarray:
        """Plane ``name`` as (N, ``channels``) uint8, Gaussian i at texel i."""
        if name not in self.names:
            raise SogError(f"sog meta.json lists no {name} plane")
        img = decode_image(self.read(self.names[name]), self.names[name], channels)
        if img.shape[0] * img.shape[1] < self.n:
            raise SogError(f"{name}: {img.shape[1]}x{img.shape[0]} image is too small for {self.n} Gaussians")
        return img.reshape(-1, channels)[:self.n]

    def joined_plane(self, high: str, low: str, bits: int) -> np.ndarray:
        """Inverse of `PlaneWriter.split_plane`: (N, 3) ``bits``-bit integers."""
        values = self.plane(high, 3).astype(np.int64) << (bits - 8)
        if bits > 8:
            values |= self.plane(low, 3)
        return values


def check_encode_options(options: Options, width: int, height: int, n: int) -> None:
    """Raise `SogError` for a grid that cannot hold ``n`` Gaussians or settings out of the format's ranges."""
    if width * height < n:
        raise SogError(f"grid {width}x{height} is too small for {n} Gaussians")
    if width > 16383 or height > 16383:
        raise SogError(f"grid {width}x{height} exceeds WebP's 16383-pixel limit")
    if not 8 <= options.means_bits <= 16:
        raise SogError(f"means_bits must be 8..16, got {options.means_bits}")
    if (not 4 <= options.quat_bits <= 8 or not 2 <= options.scale_levels <= 65536
            or not 2 <= options.color_levels <= 256 or not 4 <= options.opacity_bits <= 8
            or not 2 <= options.sh_levels <= 256):
        raise SogError("quat_bits must be 4..8, opacity_bits 4..8, scale levels 2..65536, color and SH levels "
                       "2..256")


def encode(splats: Splats, width: int, height: int, options: Options | None = None, progress=None,
           sh_palette: tuple[torch.Tensor, torch.Tensor] | None = None,
           shared_palette: bool = False) -> tuple[dict, dict[str, bytes]]:
    """Encode ``splats`` (already in grid order) into native planes; returns ``(meta, files)``.

    ``sh_palette`` ``(centroids (c, 3K), labels (N,))``: an SH palette already fitted (`fit_sh_palette`),
    instead of fitting one. With ``shared_palette`` it is stored elsewhere in the file (a layered file shares
    one): only the labels are stored here and the meta says ``"shared": true``. Each attribute is one pair of
    functions, ``encode_<attribute>`` here and ``decode_<attribute>`` in `decode`."""
    options = options or Options()
    n = len(splats)
    check_encode_options(options, width, height, n)
    splats = band_limited(splats, options)
    out = PlaneWriter(width, height, n, options, progress)
    means_meta, angle_bound = encode_means(splats, options, out)
    quats_meta, log_scales = encode_quats(splats, options, out, angle_bound)
    scales_meta = encode_scales(splats, log_scales, options, out)
    sh0_meta = encode_colour(splats, options, out)
    meta = {
        "profile": "sog", "version": VERSION, "count": n, "width": width, "height": height,
        "asset": {"generator": GENERATOR},
        "means": means_meta, "quats": quats_meta, "scales": scales_meta, "sh0": sh0_meta,
        "files": {},
    }
    if splats.shN.shape[1]:
        meta["shN"] = encode_shn(splats, options, out, sh_palette, shared_palette)
    meta["files"] = out.names  # plane name -> file name (its extension names the codec)
    return meta, out.files


def encode_means(splats: Splats, options: Options, out: PlaneWriter) -> tuple[dict, np.ndarray | None]:
    """Positions: ``means_bits`` per axis on a uniform grid over the box (after `position_transform`), the high
    byte in ``means_u`` and the low bits in ``means_l``. Returns ``(meta["means"], angle bound (N,) radians or
    None)``: with ``tolerance``, the error budget (`error_budget`) coarsens the positions here and the rotations'
    share of it goes to `encode_quats`."""
    levels = level_count(options.means_bits)
    bits = label_bits(levels)  # of the two planes
    world = splats.means.detach().cpu().double().numpy()
    transform = "log" if options.tolerance is not None else position_transform(world, options.means_transform)
    lmeans = log_transform(world) if transform == "log" else world
    mins, maxs = lmeans.min(0), lmeans.max(0)
    q = quantize_uniform(lmeans, mins, maxs, levels)
    angle_bound = None
    if options.tolerance is not None:
        step = (np.where(maxs > mins, maxs - mins, 0.0) / (levels - 1) * np.exp(np.abs(lmeans))).mean(1)
        pos_bound, angle_bound = error_budget(splats, step, options.tolerance)
        if bits > 8:
            q = coarsen_means(q, lmeans, mins, maxs, levels, pos_bound)
    out.split_plane("means_u", "means_l", q, bits)
    return {"mins": mins.tolist(), "maxs": maxs.tolist(), "bits": bits, "levels": levels,
            "transform": transform}, angle_bound


def decode_means(means_meta: dict, planes: PlaneReader) -> np.ndarray:
    """Inverse of `encode_means`: (N, 3) float64 positions."""
    bits = int(means_meta["bits"])
    levels = int(means_meta.get("levels", 1 << bits))
    if not 2 <= levels <= 1 << bits:
        raise SogError(f"sog meta.json: {levels} position levels do not fit {bits}-bit planes")
    q = planes.joined_plane("means_u", "means_l", bits)
    mins, maxs = np.asarray(means_meta["mins"], np.float64), np.asarray(means_meta["maxs"], np.float64)
    transform = legacy.position_transform_of(means_meta)
    if transform not in POSITION_TRANSFORMS:
        raise SogError(f"sog meta.json: unknown position transform {transform!r}")
    means = dequantize_uniform(q, mins, maxs, levels)
    return inv_log_transform(means) if transform == "log" else means


def encode_quats(splats: Splats, options: Options, out: PlaneWriter,
                 angle_bound: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """Rotations: each Gaussian with its smallest-angle rotation (scale axes permuted to match: the same
    covariance) as a Gibbs vector of ``quat_bits`` per component, in plane ``quats``; coarser where
    ``angle_bound`` (N,) allows. Returns ``(meta["quats"], the permuted log-scales (N, 3) float64)``."""
    quats, log_scales = canonical_rotations(splats.quats.detach().cpu().double().numpy(),
                                            splats.scales.detach().cpu().double().numpy())
    quat_levels = gibbs_levels(options.quat_bits)
    codes = pack_gibbs(quats, quat_levels)
    if angle_bound is not None:
        codes = coarsen_quats(codes, angle_bound, quat_levels)
    out.plane("quats", codes)
    return {"encoding": "gibbs", "bits": math.ceil(math.log2(quat_levels + 1)), "levels": quat_levels}, log_scales


def decode_quats(meta: dict, planes: PlaneReader) -> np.ndarray:
    """Inverse of `encode_quats`: (N, 4) wxyz unit quaternions (version 1: smallest-three texels)."""
    if meta["version"] == 1:  # smallest-three texels, as SOG v2
        return legacy.smallest_three_quats(planes.plane)
    quat_levels = int(meta["quats"].get("levels", (1 << int(meta["quats"]["bits"])) - 1))
    if not 3 <= quat_levels <= 255 or quat_levels % 2 == 0:
        raise SogError(f"sog meta.json: {quat_levels} rotation levels (an odd count, 3..255, is needed)")
    return unpack_gibbs(planes.plane("quats", 3), quat_levels)


def encode_scales(splats: Splats, log_scales: np.ndarray, options: Options, out: PlaneWriter) -> dict:
    """Log-scales (N, 3) as labels into one codebook of ``scale_levels`` entries spaced for entropy-coded labels
    (``scale_density``; None: Lloyd's, `fit_levels`), weighted by `scale_weights`; the labels' top byte in plane
    ``scales``, any low bits (more than 256 entries) in ``scales_l``. Returns ``meta["scales"]``."""
    sw = scale_weights(log_scales, splats.opacities, options.scale_weight) if options.scale_weight else None
    scale_cb, scale_idx = gridded(fit_levels(log_scales, options.scale_levels, weights=sw)[0]
                                  if options.scale_density is None else
                                  density_levels(log_scales, options.scale_levels, sw, *options.scale_density)[0],
                                  log_scales)
    scale_bits = label_bits(int(scale_idx.max()) + 1)
    out.split_plane("scales", "scales_l", scale_idx, scale_bits)
    return {"codebook": codebook_json(scale_cb), "bits": scale_bits}


def decode_scales(scales_meta: dict, planes: PlaneReader) -> np.ndarray:
    """Inverse of `encode_scales`: (N, 3) float32 log-scales."""
    scale_cb = codebook_values(scales_meta["codebook"])
    scale_idx = planes.joined_plane("scales", "scales_l", int(scales_meta.get("bits", 8)))
    if int(scale_idx.max()) >= len(scale_cb):
        raise SogError(f"scales plane refers to codebook entry {int(scale_idx.max())} of {len(scale_cb)}")
    return scale_cb[scale_idx]


def encode_colour(splats: Splats, options: Options, out: PlaneWriter) -> dict:
    """Colour and opacity: sh0 (N, 3) as labels into a ``color_levels``-entry codebook (``color_density``; None:
    k-means) in plane ``sh0``, opacity on ``opacity_bits`` in plane ``opacity``. Returns ``meta["sh0"]``."""
    n = len(splats)
    cw = np.repeat((splat_weights(splats) ** options.color_weight)[:, None], 3, 1) if options.color_weight else None
    sh0 = splats.sh0.detach().cpu().numpy().reshape(n, 3)
    sh0_cb, sh0_idx = gridded(codebook_1d(sh0, options.color_levels, weights=cw, seed=options.seed)[0]
                              if options.color_density is None else
                              density_levels(sh0, options.color_levels, cw, *options.color_density)[0], sh0)
    opacity = torch.sigmoid(splats.opacities.detach().cpu().double()).numpy()
    top = (1 << options.opacity_bits) - 1
    alpha = np.clip(np.rint(opacity * top), 0, top).astype(np.uint8)[:, None]
    # opacity in a plane of its own, not the alpha of sh0: it is close to noise, and in one texel with the colour
    # labels it spoils the colour plane's matches
    out.plane("sh0", sh0_idx.astype(np.uint8))
    out.plane("opacity", alpha)
    return {"codebook": codebook_json(sh0_cb), "opacity_bits": options.opacity_bits}


def decode_colour(meta: dict, planes: PlaneReader) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `encode_colour`: ``(sh0 (N, 3) float32, opacity logits (N,) float64)``."""
    if "opacity" in planes.names:  # its own plane (files before it: the alpha of sh0)
        sh0_tex, alpha_tex = planes.plane("sh0", 3), planes.plane("opacity", 1)[:, 0]
    else:
        sh0_tex, alpha_tex = legacy.opacity_in_sh0_alpha(planes.plane)
    return colour_and_opacity(codebook_values(meta["sh0"]["codebook"]), sh0_tex[:, :3], alpha_tex,
                              (1 << int(meta["sh0"].get("opacity_bits", 8))) - 1)


def encode_shn(splats: Splats, options: Options, out: PlaneWriter,
               sh_palette: tuple[torch.Tensor, torch.Tensor] | None, shared: bool) -> dict:
    """The higher SH bands: a palette (``sh_palette``, or `fit_sh_palette`) in plane ``shN_centroids``
    (`palette_image`; none when it is ``shared``, stored once for a layered file) and each Gaussian's label in
    ``shN_labels`` (one byte, or two for more than 256 entries). Returns ``meta["shN"]``."""
    k = splats.shN.shape[1]
    centroids, labels = sh_palette if sh_palette is not None else fit_sh_palette(splats, options)
    out.tick("shN palette")
    if shared:
        shn_meta = {"count": int(centroids.shape[0]), "shared": True}
    else:
        shn_meta, image = palette_image(centroids, k, options.seed, options.sh_levels)
        out.store("shN_centroids", image)
    c = centroids.shape[0]
    lab = labels.numpy().astype(np.uint32)
    if c <= 256:
        out.plane("shN_labels", lab.astype(np.uint8)[:, None].repeat(3, axis=1))
    else:
        out.plane("shN_labels", np.stack([lab >> 8, lab & 0xFF, np.zeros_like(lab)], 1).astype(np.uint8))
    return {**shn_meta, "bands": splats.sh_degree}


def decode_shn(shn_meta: dict | None, planes: PlaneReader, palette: np.ndarray | None) -> np.ndarray:
    """Inverse of `encode_shn`: (N, K, 3) float32 higher-band coefficients (K = 0 without them); ``palette``
    (c, K, 3): the file's shared palette when the meta says ``"shared"``."""
    k = sh_rest_count(shn_meta)
    if not k:
        return np.zeros((planes.n, 0, 3), np.float32)
    if shn_meta.get("shared"):
        if palette is None or palette.shape[1] != k:
            raise SogError("sog layer refers to a shared SH palette the file does not hold")
    else:
        palette = read_palette(shn_meta, planes.names, planes.read)
    c = palette.shape[0]
    lab = planes.plane("shN_labels", 3).astype(np.int64)
    labels = lab[:, 0] if c <= 256 else (lab[:, 0] << 8) | lab[:, 1]
    if int(labels.max()) >= c:
        raise SogError(f"shN_labels refers to palette entry {int(labels.max())} of {c}")
    return palette[labels]


def encode_layers(layers: list[Layer], options: Options | None = None, progress=None,
                  sh_palette: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[dict, dict[str, bytes]]:
    """Encode importance layers (finest first) into one file; returns ``(meta, files)``.

    One layer with no drops is a plain (version-5) file (`encode`). Otherwise layer k is encoded with
    ``layer_options(options, drops)``, its drops being the layer's own plus ``options.layer_steps[k]``
    (`layer_drops`); its planes are named ``l{k}_<plane>`` and its plain meta is
    ``meta["layers"][k]``; decoding concatenates the layers in order. The SH palette is fitted once over all
    layers and stored at the top (``meta["shN"]``, ``shN_centroids``); each layer stores its labels.
    ``sh_palette``: that palette already fitted (`fit_sh_palette` of the layers' concatenation, band-limited;
    the rate search reuses one over its probes)."""
    options = options or Options()
    # the band limit first: the shared palette is fitted on the bands the layers store
    layers = [replace(layer, splats=band_limited(layer.splats, options)) for layer in layers]
    if len(layers) == 1 and not any(layer_drops(options, 0, layers[0]).values()):
        return encode(layers[0].splats, layers[0].width, layers[0].height, options, progress, sh_palette)
    top = {"profile": "sog", "version": LAYERED_VERSION, "count": sum(len(layer.splats) for layer in layers),
           "asset": {"generator": GENERATOR}, "files": {}}
    metas, files = [], {}
    k = layers[0].splats.shN.shape[1]
    palettes = [None] * len(layers)
    if k:  # one SH palette for all layers (the higher bands are not dropped, and a SOG source keeps its own)
        centroids, labels = (sh_palette if sh_palette is not None
                             else fit_sh_palette(Splats.concat([layer.splats for layer in layers]), options))
        shn_meta, image = palette_image(centroids, k, options.seed, options.sh_levels)
        extension, files["shN_centroids" + extension] = smallest_image(image, options)
        top["files"]["shN_centroids"] = "shN_centroids" + extension
        top["shN"] = {**shn_meta, "bands": layers[0].splats.sh_degree}
        bounds = np.cumsum([0] + [len(layer.splats) for layer in layers])
        palettes = [(centroids, labels[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    for i, (layer, palette) in enumerate(zip(layers, palettes)):
        drops = layer_drops(options, i, layer)
        meta, layer_files = encode(layer.splats, layer.width, layer.height, layer_options(options, drops),
                                   progress, sh_palette=palette, shared_palette=palette is not None)
        prefix = f"l{i}_"
        meta["files"] = {plane: prefix + name for plane, name in meta["files"].items()}
        files.update({prefix + name: data for name, data in layer_files.items()})
        del meta["asset"]
        metas.append(meta)
    return {**top, "layers": metas}, files


def label_bits(levels: int) -> int:
    """Bits of a label into a codebook of ``levels`` entries, at least 8 (one byte plane)."""
    return max(8, math.ceil(math.log2(max(levels, 2))))


def read_palette(shn_meta: dict, names: dict, read) -> np.ndarray:
    """The SH palette (c, K, 3) float32 that ``shn_meta`` (``count``, ``codebook``, ``bands``, ``layout``) describes:
    ``layout`` "rgb" (version 5, `palette_image`) or, before it, one grey row of 64 entries per coefficient and
    colour."""
    k = SH_REST_COUNT[int(shn_meta["bands"])]
    c = int(shn_meta["count"])
    cb = codebook_values(shn_meta["codebook"])
    if shn_meta.get("layout") == "rgb":
        cent = decode_image(read(names["shN_centroids"]), names["shN_centroids"], 3)
        pw = cent.shape[1] // k
        if cent.shape[1] % k or pw % 64 or cent.shape[0] * pw < c:
            raise SogError(f"shN_centroids image is {cent.shape[1]}x{cent.shape[0]}, too small for {c} entries")
        idx = cent.reshape(cent.shape[0] * pw, k, 3)[:c]
        return cb[idx]
    cent = decode_image(read(names["shN_centroids"]), names["shN_centroids"], 3)[..., 0]
    rows, pw = cent.shape[0] // (3 * k), cent.shape[1]
    if pw % 64 or rows * pw < c:
        raise SogError(f"shN_centroids image is {cent.shape[1]}x{cent.shape[0]}, too small for {c} entries")
    idx = cent[:rows * 3 * k].reshape(rows, 3 * k, pw).transpose(0, 2, 1).reshape(rows * pw, 3 * k)[:c]
    return cb[idx].reshape(c, 3, k).transpose(0, 2, 1)


def decode(meta: dict, read, palette: np.ndarray | None = None) -> Splats:
    """Decode native planes. ``read(filename) -> bytes`` fetches a file named in ``meta['files']``;
    ``palette`` (c, K, 3) is the shared SH palette of a layered file. ``meta`` is checked first
    (`sog.io.sog_meta.check_native_meta`), so a direct call refuses what `sog.load` refuses."""
    from ..io.sog_meta import check_native_meta

    if not isinstance(meta, dict):
        raise SogError("malformed sog meta.json (not a JSON object)")
    check_native_meta(meta)
    return _decode(meta, read, palette)


def _decode(meta: dict, read, palette: np.ndarray | None = None) -> Splats:
    """`decode` of a checked ``meta``."""
    if meta.get("version") == LAYERED_VERSION:
        return decode_layered(meta, read)
    try:
        version = meta.get("version")
        if version not in READ_VERSIONS:
            raise SogError(f"unsupported native sog version {version!r} "
                           f"(sog reads {', '.join(map(str, READ_VERSIONS))} and {LAYERED_VERSION})")
        n = int(meta["count"])
        if n <= 0:
            raise SogError("sog file holds zero Gaussians")
        planes = PlaneReader(n, meta["files"], read)
        means = decode_means(meta["means"], planes)
        quats = decode_quats(meta, planes)
        scales = decode_scales(meta["scales"], planes)
        sh0, opacities = decode_colour(meta, planes)
        shN = decode_shn(meta.get("shN"), planes, palette)
    except SogError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SogError(f"malformed sog meta.json ({type(exc).__name__}: {exc})") from None

    return Splats.from_arrays(means, scales, quats, opacities, sh0, shN)


def decode_layered(meta: dict, read) -> Splats:
    """Decode a layered (version 3) file: each layer's plain meta (`decode`) with the shared SH palette, the layers
    concatenated in order."""
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(m, dict) for m in layers):
        raise SogError("malformed sog meta.json (a layered file needs a non-empty list of layers)")
    if any(m.get("version") not in READ_VERSIONS for m in layers):
        raise SogError(f"malformed sog meta.json (each layer must be a version {VERSION} meta)")
    try:
        shared = read_palette(meta["shN"], meta["files"], read) if "shN" in meta else None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SogError(f"malformed sog meta.json ({type(exc).__name__}: {exc})") from None
    parts = [decode(m, read, shared) for m in layers]
    if len({p.shN.shape[1] for p in parts}) > 1:
        raise SogError("malformed sog meta.json (its layers have different SH degrees)")
    if sum(len(p) for p in parts) != meta.get("count"):
        raise SogError(f"sog meta.json says {meta.get('count')} Gaussians, its layers hold "
                       f"{sum(len(p) for p in parts)}")
    return Splats.concat(parts)


class NativeProfile(Profile):
    """The native profile (formerly ``sog``): sog's own layout, read by sog and its viewer only; retired as a write
    option of ``sog compress`` (`retired`). Its files carry ``"profile": "sog"`` in meta.json."""

    name = "native"
    summary = "sog's own layout: free bit depths and codebooks, importance layers, read by sog only"
    retired = ("at an equal judging-view worst view it is no smaller than the default sogv2 file, not the 10 % "
               "smaller that would earn its place (scripts/bench_native.py; docs/profiles.md#the-native-profile-is-retired)")
    Options = Options
    presets = PRESETS
    preset_target = PRESET_TARGET
    compress_meta = COMPRESS_META
    ladder = LEVELS

    def check(self, options: Options) -> None:
        check_options(options)

    def wants_layers(self, count: int, options: Options) -> bool:
        return wants_layers(count, options)

    def plan_layers(self, splats, sensitivity, options):
        return plan_importance_layers(sensitivity, options)

    def max_layers(self):
        return None

    def fit_palette(self, splats, options):
        return stored_palette(splats, options)

    def encode(self, layers, options, progress=None, palette=None):
        return encode_layers(layers, options, progress=progress, sh_palette=palette)

    def claims(self, meta: dict) -> bool:
        return meta.get("profile") == "sog"

    def decode(self, meta, read):
        return decode(meta, read)

    def grids(self, meta, read):
        return [(int(m["height"]), int(m["width"])) for m in meta.get("layers", [meta])]


PROFILE = NativeProfile()
