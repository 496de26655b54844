"""The native ``sog`` profile: SOG-style planes with the choices PlayCanvas's layout fixes left open.

Same idea as SOG v2 (one texel per Gaussian, row-major, Gaussian i at texel i), but:

* positions use ``means_bits`` (8..16) bits per axis; the high byte and the remaining low bits
  are separate RGB planes, so fewer bits make the noisy low plane cheaper; they are quantised on a uniform
  grid unless a few far Gaussians stretch the box (`position_transform`; then after SOG's log transform);
* every rotation is rewritten as its smallest-angle equivalent (`rotation.canonical_rotations`: one of
  24 axis relabellings, scales permuted to match, the same covariance) and stored as its Gibbs vector
  ``(x, y, z) / w``, whose components then lie in ±tan 22.5°: an 8-bit code turns a Gaussian 1.9x
  less than an 8-bit smallest-three component, with no largest-component tag (3 channels, not 4);
* the log-scale codebook's levels are spaced for entropy-coded labels (`quantize.density_levels`, point
  density p^0.15 w^0.3 with w = (opacity × scale²)^``scale_weight``): the large, opaque Gaussians that cover
  pixels get the closest levels, and the many small ones few. Lloyd's algorithm (`fit_levels`, still there
  with ``scale_density=None``) spaces them for labels of fixed length and crowds them where values are dense,
  which makes the labels expensive: on tarot the same layout at 1024 levels gave 1,092,372 B at 58.89 dB with
  Lloyd and 1,026,842 B at 58.59 dB (-6 %, -0.3 dB) this way; more than 256 levels store the labels' low bits
  in a ``scales_l`` plane;
* the sh0 colour codebook's levels have point density p^0.15 (``color_density``), for the same reason: against
  k-means, tarot +0.12 dB at equal bytes, playbot the same. Evenly spaced levels (p^0) did as well on tarot, plant
  and kacytran but cost playbot 1.85 dB for 171 KB (its colours spread wide, and 256 even levels are coarse in
  the dense middle);
* the SH palette size is a setting, its k-means is weighted by opacity × footprint, and the
  palette is ordered along its first principal axis so neighbouring labels hold similar
  entries (a smoother label plane); a source that is already palettised (at most N /
  ``exact_palette_per`` distinct SH rows, e.g. a SOG) keeps its palette exactly;
* optional ``tolerance``: per-Gaussian coarser positions/rotations for faint or round Gaussians
  (off by default: on the shared scenes uniform ``means_bits`` gave more PSNR per byte);
* an optional SH band limit (``sh_degree``);
* importance layers (``layers``, version 3): the compressor (`sog.pipeline`) splits the Gaussians into up to
  three layers (15, 35 and 50 %) by how much of the rendered pictures they make (`sog.render.importance`),
  sorts each onto its own grid and stores the less important layers with coarser settings, per attribute by how much
  less the renders change there (`layer_options`, `encode_layers`). The file holds one plain (version-4) meta per
  layer under ``"layers"`` and planes named ``l<k>_<plane>``; decoding concatenates the layers;
* each plane is stored with the smallest of the lossless codecs tried (``codecs``), no alpha
  channel where none is needed.

Codebooks in ``meta.json`` are integer steps on a fine grid (`codebook_json`). ``meta.json`` carries
``"profile": "sog"`` and ``"version": 4`` (of this profile; versions 2, with float codebooks and log positions,
and 1, with smallest-three rotations, are still read), or ``"version": 3`` and a list of such ``"layers"``.

Presets (`PRESETS`, the CLI's ``--quality``): ``small``, ``default``, ``high``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from ..errors import SogError
from ..stable import snap
from ..splats import SH_REST_COUNT, Splats
from .image import CODECS, decode_image, encode_image
from . import native_legacy as legacy
from .base import Layer, Profile
from .playcanvas import default_palette_size, inv_log_transform, log_transform
from .rotation import GIBBS_MAX, canonical_rotations, gibbs_levels, pack_gibbs, unpack_gibbs
from .quantize import codebook_1d, density_levels, distinct_rows, kmeans, label_dtype, nearest_sorted

#: 5: the SH palette image holds a coefficient's three colours in one RGB texel (``shN.layout`` "rgb", `palette_image`);
#: 4: positions may be linear (``"transform"``) and codebooks are integer steps (`codebook_json`); 2: rotations as
#: canonical Gibbs vectors; 1: smallest-three. All are still read; a reader of 4 refuses 5 instead of misreading it.
VERSION = 5
READ_VERSIONS = (1, 2, 4, VERSION)  #: plain metas `decode` reads
LAYERED_VERSION = 3  #: several importance layers, each a plain meta of its own under "layers"
GENERATOR = "sog (native profile)"  #: meta.json "asset" / "generator"
#: deflate the .sog zip's meta.json entry (its codebooks are long lists of floats)
COMPRESS_META = True


@dataclass
class Options:
    """Encoder settings for the native profile (stored choices are recorded in meta.json).

    The default is rung `DEFAULT_LEVEL` of `sog.rate.LEVELS` (15-bit positions, 7-bit rotations, 1024 scale and
    256 colour levels and a 128-level codebook for the SH palette's coefficients on the first importance layer; the
    other two layers less, `layer_options`, in half steps)
    with the scale weight 0.8, chosen by ``scripts/tune_native.py`` on tuning views only: the candidate (rung x
    layers x scale weight) of smallest mean bytes whose mean *and* worst tuning view are at least
    splat-transform's on every shared scene. The previous default (14 bits, 181 colour levels, scale weight 2, chosen
    on far views) was 2-4 dB under splat-transform's on plant's and tarot's close views and is not among the
    candidates that hold.
    """

    effort: int = 4                    #: image-codec effort 0..6
    seed: int = 0
    means_bits: float = 15             #: bits per position axis, 8..16; fractional: round(2^bits) levels
    palette_size: int | None = 16384   #: cap on SH palette entries; None = splat-transform's rule
    palette_per: int = 16              #: >0: at most N / palette_per entries (a power of two, >= 256)
    kmeans_iters: int = 10
    #: >0: SH rows with at most N / this distinct values (<= 65536) are kept exactly. 1.5 as in the sogv2 profile: at 4,
    #: playbot's 125K level (65,529 distinct rows, N / 1.9) was k-means'ed to N / 16 entries and lost 13 dB on
    #: tuning views (37.3 / 34.4 dB mean / worst against 50.8 / 47.0 with its palette kept)
    exact_palette_per: float = 1.5
    quat_bits: float = 7               #: bits per stored rotation component (Gibbs vector), 5..8; may be fractional
    scale_levels: int = 1024           #: entries of the log-scale codebook (2..65536; > 256 adds a low plane)
    color_levels: int = 256            #: entries of the sh0 codebook (<= 256)
    #: entries of the codebook of the SH palette's coefficients (<= 256). 128: on playbot 2_0 (tuning views, 3 layers)
    #: 256 -> 128 saved 200 KB (8 %) for 0.7 / 0.5 dB of the mean / worst view, the cheapest step there
    sh_levels: int = 128
    opacity_bits: int = 8              #: bits of opacity (its own plane), 4..8
    weighted: bool = True              #: weight the SH k-means by opacity x footprint
    sh_degree: int | None = None       #: keep at most this SH degree (None = all)
    #: scale codebook weights values by (opacity x scale^2)^this (0: unweighted). 0.8, as in sogv2 (chosen with the
    #: rung on tuning views): 2 spends the levels on large, opaque Gaussians, which far views see, and close views
    #: then show the small ones at the wrong size (plant, 3 layers: 51.1 / 44.8 dB against 57.8 / 53.7 at 0.8)
    scale_weight: float = 0.8
    color_weight: float = 0.0          #: sh0 codebook weights colours by (opacity x footprint)^this (0: unweighted)
    #: the scale codebook's levels have point density p^a w^b (`quantize.density_levels`: p the log-scales' density,
    #: w their weight); None: Lloyd's algorithm (`fit_levels`)
    scale_density: tuple[float, float] | None = (0.15, 0.3)
    #: the same for the sh0 codebook (w: its weights, if any; (0, 0): evenly spaced); None: k-means (`codebook_1d`)
    color_density: tuple[float, float] | None = (0.15, 0.0)
    tolerance: float | None = None     #: render-error budget in uniform position steps (None: uniform bits)
    codecs: tuple[str, ...] = ("webp", "png")  #: try these per plane, keep the smallest
    means_transform: str = "auto"      #: positions quantised after "log", "linear" or "auto" (`position_transform`)
    layers: int = 3                    #: split the Gaussians into up to this many importance layers (1: one grid)
    layer_min: int = 16384             #: ... of at least this many Gaussians each (smaller scenes: fewer layers)
    layer_max_drop: int = 3            #: a layer's settings are at most this many steps coarser than the first's
    #: relative layer sizes, most important first (None: `importance.DEFAULT_SHARES`, or equal parts)
    layer_shares: tuple[float, ...] | None = None
    #: per layer, steps added to its drops, in the order of `LAYER_STEPPED` (the rate search's per-layer refinement)
    layer_steps: tuple[tuple[float, ...], ...] | None = None


#: the rung of `sog.rate.LEVELS` the `Options` defaults are (`scripts/tune_native.py`)
DEFAULT_LEVEL = 4

#: ``--quality`` presets: overrides of `Options`.
PRESETS: dict[str, dict] = {
    # the bit depths come from the rate search (`PRESET_PSNR`); an SH palette of at most N/12 entries (32,768 on
    # playbot) unless the source is already palettised (playbot's exact 65,536 kept 48.25 dB where k-means to
    # 32,768 gave 44.90)
    "small": {"palette_size": 32768, "palette_per": 12},
    "default": {},  # the `Options` defaults
    "high": {"means_bits": 16, "quat_bits": 8, "scale_levels": 2048, "color_levels": 256, "sh_levels": 256,
             "palette_size": 65536, "palette_per": 4, "kmeans_iters": 15},
}

#: presets that are a quality target: the smallest file whose renders reach this PSNR against the input's
#: (`sog.rate`, on `sog.render.views.search_cameras`' tuning views). No fixed bit depths reach 45 dB at 10x on
#: every shared scene: tarot needs 4-bit rotations for 10x, where kacytran falls to 42.9 dB.
PRESET_PSNR: dict[str, float] = {"small": 45.0}


def preset_options(quality: str, **overrides) -> dict:
    """Profile options for a ``--quality`` preset name, with ``overrides`` applied on top."""
    if quality not in PRESETS:
        raise SogError(f"unknown quality preset {quality!r} (choose from {', '.join(PRESETS)})")
    known = {f.name for f in fields(Options)}
    return {k: v for k, v in {**PRESETS[quality], **overrides}.items() if k in known}


#: the fewest levels (bits for rotations) a coarser layer gets: below these the render error grows much faster
#: than the sensitivity (a small-error estimate) says (tarot, first layer at 128 scale levels, 16 in its last: 37.9
#: dB against 47.2 at 256; a floor of 64 instead of 32 cost plant's small file 35 KB for 0.5 dB). Rotations: 4 bits
#: (5 before: tarot's last two layers sat on it, and their half step to 4.5 bits saved 30-80 KB per dB, more than
#: any other step; its file at splat-transform's PSNR became 1.1 % smaller)
LAYER_FLOOR = {"scales": 32, "sh0": 8, "quats": 4}
#: the attributes whose per-layer drops `layer_options` applies (the order of `Options.layer_steps`)
LAYER_STEPPED = ("means", "quats", "scales", "sh0")


def layer_options(options: Options, drops: dict[str, float]) -> Options:
    """``options`` made coarser by ``drops`` (``means``, ``quats``, ``scales``, ``sh0``: steps, may be half steps):
    one bit less per step on positions and rotations, half the scale and colour levels. Opacity and the SH
    palette rule are unchanged, and no setting goes below its smallest allowed value."""
    d = {name: max(0.0, float(drops.get(name, 0))) for name in ("means", "quats", "scales", "sh0")}

    def fewer(levels: int, steps: float, floor: int) -> int:
        return min(levels, max(floor, int(round(levels / 2.0 ** steps))))

    return replace(options, means_bits=min(options.means_bits, max(8, options.means_bits - d["means"])),
                   quat_bits=min(options.quat_bits, max(LAYER_FLOOR["quats"], options.quat_bits - d["quats"])),
                   scale_levels=fewer(options.scale_levels, d["scales"], LAYER_FLOOR["scales"]),
                   color_levels=fewer(options.color_levels, d["sh0"], LAYER_FLOOR["sh0"]))


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


def splat_weights(splats: Splats) -> np.ndarray:
    """(N,) importance of each Gaussian: opacity x screen footprint (exp of twice the mean log scale).

    In float64 numpy, snapped to 20 significant bits (`sog.stable.snap`): the weights steer the SH k-means'
    labels, and torch's float32 sigmoid/exp round the last bit differently by CPU instruction set."""
    logit = splats.opacities.detach().cpu().double().numpy()
    s = splats.scales.detach().cpu().double().numpy()
    opacity = 1.0 / (1.0 + np.exp(-logit))
    area = np.exp(np.clip(2 * ((s[:, 0] + s[:, 1] + s[:, 2]) / 3), -60, 20))  # the columns in a fixed order
    w = snap(opacity * area)
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
    labels = nearest_sorted(codebook.astype(np.float64), flat)
    return codebook, label_dtype(labels, k).reshape(np.shape(values))


def scale_weights(log_scales: np.ndarray, opacities: torch.Tensor, power: float) -> np.ndarray:
    """(N, 3) weights of log-scale values in their codebook fit: (opacity x s^2)^power per value, so the
    largest, most opaque Gaussians (the ones that cover pixels) get the closest levels. Snapped to 20 significant
    bits (`sog.stable.snap`): they place the codebook's levels, and exp/log round the last bit by CPU."""
    alpha = 1.0 / (1.0 + np.exp(-opacities.detach().cpu().double().numpy()))[:, None]
    logw = power * (np.log(np.clip(alpha, 1e-6, 1)) + 2 * log_scales)
    return snap(np.exp(np.clip(logw - logw.max(), -60, 0)))


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
    keeps fine steps near the centre, as SOG does. Measured at the same bytes, linear steps gave +0.13 dB on tarot,
    +0.03 dB on plant and +0.3 to +1.9 dB on kacytran (positions out to 1,000 units, all of them far from the
    origin, where the log's steps are 100 times coarser than at the centre). ``means`` (N, 3)."""
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
    each where float decimals took four or five: tarot's meta.json went from 7.0 to 2.4 KB."""
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


def band_limited(splats: Splats, options: Options) -> Splats:
    """``splats`` with at most ``options.sh_degree`` SH bands (all of them when it is None)."""
    if options.sh_degree is None:
        return splats
    return splats.with_sh_degree(min(options.sh_degree, splats.sh_degree))


def fit_sh_palette(splats: Splats, options: Options) -> tuple[torch.Tensor, torch.Tensor]:
    """The higher-band SH palette of ``splats``: ``(centroids (c, 3K) float32, labels (N,) long)``, entries
    ordered along their first principal axis. Size: ``palette_size`` capped at N / ``palette_per``; an already
    palettised source with at most N / ``exact_palette_per`` distinct rows keeps them exactly."""
    n, k = len(splats), splats.shN.shape[1]
    flat = splats.shN.detach().cpu().float().transpose(1, 2).reshape(n, 3 * k)
    size = min(options.palette_size or default_palette_size(n), 65536)
    if options.palette_per > 0:
        size = min(size, 1 << max(8, int(math.log2(max(n // options.palette_per, 1)))))
    if options.exact_palette_per > 0:  # an already palettised source (e.g. a SOG): keep its palette
        exact = distinct_rows(flat, int(min(n // options.exact_palette_per, 65536)))
        if exact is not None:
            size = max(size, exact[0].shape[0])
    weights = torch.from_numpy(splat_weights(splats)) if options.weighted else None
    centroids, labels = kmeans(flat, size, options.kmeans_iters, options.seed, weights)
    return order_palette(centroids, labels)


def palette_image(centroids: torch.Tensor, k: int, seed: int = 0, levels: int = 256) -> tuple[dict, np.ndarray]:
    """SH palette (c, 3K) -> ``({"count", "codebook", "layout"}, image (rows, pw·K, 3) uint8)``: indices into a
    codebook of ``levels`` values; entry e's coefficient i is the RGB texel (e // pw, (e % pw)·K + i) holding its
    three colours (``layout`` "rgb": the image codec's colour transforms see the channels of one coefficient
    together; on playbot's 65,529-entry palette 14 % fewer bytes than one grey row per coefficient and colour), 64
    entries per row (wider when the rows would pass WebP's height limit)."""
    c = centroids.shape[0]
    cb, cidx = gridded(codebook_1d(centroids.numpy(), levels, seed=seed)[0], centroids.numpy())  # (c, 3K) uint8
    pw = 64
    while math.ceil(c / pw) > 16383:
        pw *= 2
    rows = math.ceil(c / pw)
    pal = np.zeros((rows * pw, k, 3), np.uint8)
    pal[:c] = cidx.reshape(c, 3, k).transpose(0, 2, 1)
    return {"count": int(c), "codebook": codebook_json(cb), "layout": "rgb"}, pal.reshape(rows, pw * k, 3)


def encode(splats: Splats, width: int, height: int, options: Options | None = None, progress=None,
           sh_palette: tuple[torch.Tensor, torch.Tensor] | None = None,
           shared_palette: bool = False) -> tuple[dict, dict[str, bytes]]:
    """Encode ``splats`` (already in grid order) into native planes; returns ``(meta, files)``.

    ``sh_palette`` ``(centroids (c, 3K), labels (N,))``: an SH palette already fitted (`fit_sh_palette`),
    instead of fitting one. With ``shared_palette`` it is stored elsewhere in the file (a layered file shares
    one): only the labels are stored here and the meta says ``"shared": true``."""
    options = options or Options()
    n = len(splats)
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
    splats = band_limited(splats, options)
    tick = progress or (lambda name: None)
    files: dict[str, bytes] = {}
    codecs_used: dict[str, str] = {}

    def store(name: str, img: np.ndarray) -> None:
        extension, data = smallest_image(img, options)
        filename = name + extension
        files[filename] = data
        codecs_used[name] = filename
        tick(name)

    def plane(name: str, values: np.ndarray) -> None:
        c = values.shape[1]
        img = np.zeros((width * height, c), np.uint8)
        img[:n] = values
        if n < width * height:  # pad with the last Gaussian's texel: no edge for the predictor
            img[n:] = values[-1]
        store(name, img.reshape(height, width, c))

    def split_plane(high: str, low: str, values: np.ndarray, bits: int) -> None:
        """``bits``-bit integers (N, 3): the top 8 bits in plane ``high``, any rest in plane ``low``."""
        plane(high, (values >> (bits - 8)).astype(np.uint8))
        if bits > 8:
            plane(low, (values & ((1 << (bits - 8)) - 1)).astype(np.uint8))

    levels = level_count(options.means_bits)
    bits = label_bits(levels)  # of the two planes
    world = splats.means.detach().cpu().double().numpy()
    transform = "log" if options.tolerance is not None else position_transform(world, options.means_transform)
    lmeans = log_transform(world) if transform == "log" else world
    mins, maxs = lmeans.min(0), lmeans.max(0)
    q = quantize_uniform(lmeans, mins, maxs, levels)
    if options.tolerance is not None:
        step = (np.where(maxs > mins, maxs - mins, 0.0) / (levels - 1) * np.exp(np.abs(lmeans))).mean(1)
        pos_bound, angle_bound = error_budget(splats, step, options.tolerance)
        if bits > 8:
            q = coarsen_means(q, lmeans, mins, maxs, levels, pos_bound)
    split_plane("means_u", "means_l", q, bits)

    # each Gaussian with its smallest-angle rotation (scale axes permuted to match: same covariance)
    quats, log_scales = canonical_rotations(splats.quats.detach().cpu().double().numpy(),
                                            splats.scales.detach().cpu().double().numpy())
    quat_levels = gibbs_levels(options.quat_bits)
    codes = pack_gibbs(quats, quat_levels)
    if options.tolerance is not None:
        codes = coarsen_quats(codes, angle_bound, quat_levels)
    plane("quats", codes)

    sw = scale_weights(log_scales, splats.opacities, options.scale_weight) if options.scale_weight else None
    cw = np.repeat((splat_weights(splats) ** options.color_weight)[:, None], 3, 1) if options.color_weight else None
    scale_cb, scale_idx = gridded(fit_levels(log_scales, options.scale_levels, weights=sw)[0]
                                  if options.scale_density is None else
                                  density_levels(log_scales, options.scale_levels, sw, *options.scale_density)[0],
                                  log_scales)
    scale_bits = label_bits(int(scale_idx.max()) + 1)
    split_plane("scales", "scales_l", scale_idx, scale_bits)  # > 256 entries: the labels' low bits apart

    sh0 = splats.sh0.detach().cpu().numpy().reshape(n, 3)
    sh0_cb, sh0_idx = gridded(codebook_1d(sh0, options.color_levels, weights=cw, seed=options.seed)[0]
                              if options.color_density is None else
                              density_levels(sh0, options.color_levels, cw, *options.color_density)[0], sh0)
    opacity = torch.sigmoid(splats.opacities.detach().cpu().double()).numpy()
    top = (1 << options.opacity_bits) - 1
    alpha = np.clip(np.rint(opacity * top), 0, top).astype(np.uint8)[:, None]
    # opacity in a plane of its own, not the alpha of sh0: it is close to noise (tarot: within 1 % of its
    # order-0 entropy), and in one texel with the colour labels it spoils the colour plane's matches; apart,
    # tarot's file is 7.1 KB (0.65 %) smaller
    plane("sh0", sh0_idx.astype(np.uint8))
    plane("opacity", alpha)

    meta = {
        "profile": "sog", "version": VERSION, "count": n, "width": width, "height": height,
        "asset": {"generator": GENERATOR},
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "bits": bits, "levels": levels,
                  "transform": transform},
        "quats": {"encoding": "gibbs", "bits": math.ceil(math.log2(quat_levels + 1)), "levels": quat_levels},
        "scales": {"codebook": codebook_json(scale_cb), "bits": scale_bits},
        "sh0": {"codebook": codebook_json(sh0_cb), "opacity_bits": options.opacity_bits},
        "files": {},
    }

    k = splats.shN.shape[1]
    if k:
        centroids, labels = sh_palette if sh_palette is not None else fit_sh_palette(splats, options)
        tick("shN palette")
        if shared_palette:
            shn_meta = {"count": int(centroids.shape[0]), "shared": True}
        else:
            shn_meta, image = palette_image(centroids, k, options.seed, options.sh_levels)
            store("shN_centroids", image)
        c = centroids.shape[0]
        lab = labels.numpy().astype(np.uint32)
        if c <= 256:
            plane("shN_labels", lab.astype(np.uint8)[:, None].repeat(3, axis=1))
        else:
            plane("shN_labels", np.stack([lab >> 8, lab & 0xFF, np.zeros_like(lab)], 1).astype(np.uint8))
        meta["shN"] = {**shn_meta, "bands": splats.sh_degree}
    meta["files"] = codecs_used  # plane name -> file name (its extension names the codec)
    return meta, files


def layer_drops(options: Options, index: int, layer: Layer) -> dict[str, float]:
    """The drops layer ``index`` is stored with: its own (`Layer.drops`) plus ``options.layer_steps[index]``."""
    drops = dict(layer.drops)
    if options.layer_steps is not None:
        if len(options.layer_steps) <= index or len(options.layer_steps[index]) != len(LAYER_STEPPED):
            raise SogError(f"layer_steps needs {len(LAYER_STEPPED)} steps (one per attribute of LAYER_STEPPED) "
                           f"for layer {index}")
        for name, step in zip(LAYER_STEPPED, options.layer_steps[index]):
            drops[name] = drops.get(name, 0) + step
    return drops


def encode_layers(layers: list[Layer], options: Options | None = None, progress=None,
                  sh_palette: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[dict, dict[str, bytes]]:
    """Encode importance layers (finest first) into one file; returns ``(meta, files)``.

    One layer with no drops is a plain (version-4) file (`encode`). Otherwise layer k is encoded with
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


def order_palette(centroids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reorder palette entries (k, D) along their first principal axis; relabel (N,) to match.

    The same order for the same entries on any machine and thread count: float64, numpy's own pairwise sums and
    einsum loops (no threaded BLAS reduction whose order depends on the thread count), the axis signed so its
    largest component is positive and rounded to 1e-9, a stable sort. A torch SVD here gave a different order
    with 1 and with 2 threads, so different bytes."""
    if centroids.shape[0] < 2:
        return centroids, labels
    c = centroids.detach().cpu().double().numpy()
    centred = c - c.mean(0)
    _, vectors = np.linalg.eigh(np.einsum("ki,kj->ij", centred, centred))
    axis = vectors[:, -1] * (1.0 if vectors[np.abs(vectors[:, -1]).argmax(), -1] >= 0 else -1.0)
    proj = (centred * np.round(axis, 9)).sum(1)
    order = torch.from_numpy(np.argsort(proj, kind="stable")).to(centroids.device)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return centroids[order], rank[labels]


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
        layers = meta.get("layers")
        if not isinstance(layers, list) or not layers or not all(isinstance(m, dict) for m in layers):
            raise SogError("malformed sog meta.json (a layered file needs a non-empty list of layers)")
        if any(m.get("version") not in READ_VERSIONS for m in layers):
            raise SogError(f"malformed sog meta.json (each layer must be a version {VERSION} meta)")
        try:
            shared = read_palette(meta["shN"], meta["files"], read) if "shN" in meta else None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SogError(f"malformed sog meta.json ({type(exc).__name__}: {exc})") from None
        parts = [_decode(m, read, shared) for m in layers]
        if len({p.shN.shape[1] for p in parts}) > 1:
            raise SogError("malformed sog meta.json (its layers have different SH degrees)")
        if sum(len(p) for p in parts) != meta.get("count"):
            raise SogError(f"sog meta.json says {meta.get('count')} Gaussians, its layers hold "
                           f"{sum(len(p) for p in parts)}")
        return Splats.concat(parts)
    try:
        version = meta.get("version")
        if version not in READ_VERSIONS:
            raise SogError(f"unsupported native sog version {version!r} "
                           f"(sog reads {', '.join(map(str, READ_VERSIONS))} and {LAYERED_VERSION})")
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

        def joined_plane(high: str, low: str, bits: int) -> np.ndarray:
            """Inverse of the encoder's ``split_plane``: (N, 3) ``bits``-bit integers."""
            values = plane(high, 3).astype(np.int64) << (bits - 8)
            if bits > 8:
                values |= plane(low, 3)
            return values

        bits = int(meta["means"]["bits"])
        levels = int(meta["means"].get("levels", 1 << bits))
        if not 2 <= levels <= 1 << bits:
            raise SogError(f"sog meta.json: {levels} position levels do not fit {bits}-bit planes")
        q = joined_plane("means_u", "means_l", bits)
        mins, maxs = np.asarray(meta["means"]["mins"], np.float64), np.asarray(meta["means"]["maxs"], np.float64)
        transform = legacy.position_transform_of(meta["means"])
        if transform not in POSITION_TRANSFORMS:
            raise SogError(f"sog meta.json: unknown position transform {transform!r}")
        means = dequantize_uniform(q, mins, maxs, levels)
        means = inv_log_transform(means) if transform == "log" else means

        if version == 1:  # smallest-three texels, as SOG v2
            quats = legacy.smallest_three_quats(plane)
        else:
            quat_levels = int(meta["quats"].get("levels", (1 << int(meta["quats"]["bits"])) - 1))
            if not 3 <= quat_levels <= 255 or quat_levels % 2 == 0:
                raise SogError(f"sog meta.json: {quat_levels} rotation levels (an odd count, 3..255, is needed)")
            quats = unpack_gibbs(plane("quats", 3), quat_levels)
        scale_cb = codebook_values(meta["scales"]["codebook"])
        scale_idx = joined_plane("scales", "scales_l", int(meta["scales"].get("bits", 8)))
        if int(scale_idx.max()) >= len(scale_cb):
            raise SogError(f"scales plane refers to codebook entry {int(scale_idx.max())} of {len(scale_cb)}")
        scales = scale_cb[scale_idx]
        if "opacity" in names:  # its own plane (files before it: the alpha of sh0)
            sh0_tex, alpha_tex = plane("sh0", 3), plane("opacity", 1)[:, 0]
        else:
            sh0_tex, alpha_tex = legacy.opacity_in_sh0_alpha(plane)
        sh0 = codebook_values(meta["sh0"]["codebook"])[sh0_tex[:, :3]]
        top = (1 << int(meta["sh0"].get("opacity_bits", 8))) - 1
        alpha = np.clip(alpha_tex.astype(np.float64) / top, 1e-6, 1 - 1e-6)
        opacities = np.log(alpha / (1 - alpha))

        shn_meta = meta.get("shN")
        bands = int(shn_meta["bands"]) if shn_meta else 0
        k = SH_REST_COUNT.get(bands)
        if k is None:
            raise SogError(f"unsupported shN bands {bands}")
        shN = np.zeros((n, k, 3), np.float32)
        if k:
            if shn_meta.get("shared"):
                if palette is None or palette.shape[1] != k:
                    raise SogError("sog layer refers to a shared SH palette the file does not hold")
            else:
                palette = read_palette(shn_meta, names, read)
            c = palette.shape[0]
            lab = plane("shN_labels", 3).astype(np.int64)
            labels = lab[:, 0] if c <= 256 else (lab[:, 0] << 8) | lab[:, 1]
            if int(labels.max()) >= c:
                raise SogError(f"shN_labels refers to palette entry {int(labels.max())} of {c}")
            shN = palette[labels]
    except SogError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise SogError(f"malformed sog meta.json ({type(exc).__name__}: {exc})") from None

    return Splats.from_arrays(means, scales, quats, opacities, sh0, shN)


def check_options(options: Options) -> None:
    """Raise `SogError` for layer settings the pipeline would trip over after the slow work."""
    if options.layers < 1:
        raise SogError(f"layers must be 1 or more, not {options.layers}")
    if options.layer_shares is not None:
        from ..render.importance import check_layer_shares
        check_layer_shares(options.layer_shares, options.layers)


def plan_importance_layers(splats: Splats, options, cameras, device, seed: int) -> list:
    """Importance layers of ``splats`` from render sensitivities seen from ``cameras`` (`sog.render.importance`);
    ``options`` has ``layers``, ``layer_min``, ``layer_max_drop`` and ``layer_shares``. Shared by the profiles that
    store layers."""
    from ..render.importance import importance_layers, sensitivities
    sensitivity = sensitivities(splats, cameras, device, seed=seed, per_view=True)  # (V, N) each: the worst view bounds
    return importance_layers(sensitivity, options.layers, options.layer_min, options.layer_max_drop,
                             options.layer_shares)


class NativeProfile(Profile):
    """The native profile (`--profile native`, formerly ``sog``): the smallest files, read by sog and its viewer
    only. Its files carry ``"profile": "sog"`` in meta.json."""

    name = "native"
    summary = "sog's own layout: free bit depths and codebooks, importance layers, read by sog only"
    Options = Options
    presets = PRESETS
    preset_psnr = PRESET_PSNR
    compress_meta = COMPRESS_META
    searched = ("means_bits", "quat_bits", "scale_levels", "color_levels", "sh_levels")  # `sog.rate.LEVELS`' keys

    def check(self, options: Options) -> None:
        check_options(options)

    def wants_layers(self, count: int, options: Options) -> bool:
        return options.layers > 1 and count >= 2 * options.layer_min

    def plan_layers(self, splats, options, cameras, device, seed):
        return plan_importance_layers(splats, options, cameras, device, seed)

    def max_layers(self):
        return None

    def encode(self, layers, options, progress=None):
        return encode_layers(layers, options, progress=progress)

    def encode_to_psnr(self, layers, target, options, cameras, device, progress=None):
        from ..rate import encode_to_psnr
        return encode_to_psnr(layers, target, options, cameras, device=device, progress=progress)

    def claims(self, meta: dict) -> bool:
        return meta.get("profile") == "sog"

    def decode(self, meta, read):
        return decode(meta, read)

    def grids(self, meta, read):
        return [(int(m["height"]), int(m["width"])) for m in meta.get("layers", [meta])]


PROFILE = NativeProfile()
