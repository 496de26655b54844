"""The ``sogv2`` profile (the default): PlayCanvas SOG v2 files, rate-optimised, that every v2 reader decodes as is.

The layout is fixed by the format (`sog.codec.v2`: 16-bit log-space positions in ``means_l/means_u``,
smallest-three 8-bit quaternions with the dropped component's index in alpha, 256-entry codebooks for scales and
``sh0``, opacity in the alpha of ``sh0``, an SH palette with 16-bit labels, lossless WebP). What the native profile
learned is spent inside those fields; the reader sees an ordinary v2 file:

* **coarser lattices inside the fixed fields**: a position axis of ``means_bits`` bits is stored on every
  2^(16 - bits)-th 16-bit code (the low bits of ``means_l`` are zeros; ``maxs`` is stretched so the top code is the
  top level), a rotation component of ``quat_bits`` on every 2^(7 - bits)-th 8-bit code around the middle, opacity
  of ``opacity_bits`` on every 2^(8 - bits)-th alpha value (anchored at 255, so opaque stays opaque). Fractional
  bits give a step of round(2^(16 - bits)) etc. The lossless WebP then codes fewer distinct values;
* **canonical rotations** (`rotation.canonical_rotations`): each Gaussian takes its smallest-angle equivalent
  rotation (scales permuted to match: the same covariance), so ``w`` is always the dropped component (a constant
  alpha) and the three stored ones sit in the middle ~55 % of the codes;
* **codebooks spaced for entropy-coded labels** (`quantize.density_levels`, the native profile's densities, the
  scale weight (opacity x s^2)^``scale_weight``): ``scale_levels`` / ``color_levels`` of the 256 entries are used
  (the rest repeat the last one);
* **a default chosen on tuning views**: rung `DEFAULT_LEVEL` of `LEVELS` and ``scale_weight`` are what
  ``scripts/tune_sogv2.py`` picks (the smallest candidate at least splat-transform's mean and worst tuning view on
  every shared scene), never a choice made on `sog eval`'s judging views;
* **importance layers as row blocks of the one grid**: the Gaussians are split by render importance
  (`plan_layers`: `sog.codec.layers`, as for the native profile), each layer fills whole rows of the W-wide grid (its size a multiple of W, the
  last layer excepted), is sorted on its own block and stored with its own, coarser lattices (its scale and colour
  labels levels of its own inside the shared codebook). Off by default (``layers=1``, ``--layers 3`` turns them
  on);
* **an SH palette sized by rate** (``palette_size`` / ``palette_per``; weighted k-means, entries ordered along
  their first principal axis so neighbouring labels are alike; an already palettised source keeps its palette);
* ``--psnr`` (`sog.rate` over `LEVELS`) and ``--quality`` presets, as for the native profile.

What was measured to choose these: docs/profiles.md.

The file's ``meta.json`` is plain version 2 (no ``"profile"`` key): the playcanvas profile claims it and
`sog.codec.v2` decodes it.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import SogError
from ..metrics import SMALL_TARGET, RateTarget
from ..splats import Splats
from .base import Layer, Profile
from .layers import layer_drops, layer_options, plan_importance_layers, wants_layers
from .options import CodecOptions
from .options import check_options as check_shared
from .image import encode_image
from .palette import band_limited, fit_sh_palette, stored_palette
from .quantize import codebook_1d, density_levels, nearest_sorted, scale_weights
from .rotation import canonical_rotations
from .v2 import QUAT_KEEP, SQRT2, grid_of, log_transform
from .v2 import decode as decode_v2

GENERATOR = "sog (sogv2 profile)"  #: meta.json "asset" / "generator"
#: a canonical rotation's three stored components span about 139 of the 256 smallest-three codes (|q_i| <= 0.38):
#: ``quat_bits`` counts bits over that span, so b bits store every 2^(7 - b)-th code (7 and 8: every code)
QUAT_FULL_BITS = 7

#: the ladder of the rate search, finest (largest file) first, one setting coarser per step; index `DEFAULT_LEVEL`
#: is the default. The default rung and ``Options.scale_weight`` were chosen by ``scripts/tune_sogv2.py`` on tuning
#: views only (`sog.render.views.TUNING_SEED`): the candidate of smallest bytes whose mean and worst tuning view
#: are at least splat-transform's on every shared scene with a splat-transform .sog (docs/profiles.md); every rung
#: after the default keeps at most its 90 SH codebook entries
LEVELS: list[dict] = [
    {"means_bits": m, "quat_bits": q, "scale_levels": s, "color_levels": c, "sh_levels": h} for m, q, s, c, h in [
        (16, 7, 256, 256, 256), (15, 7, 256, 256, 256), (14, 7, 256, 256, 256), (14, 6, 256, 256, 256),
        (14, 6, 181, 256, 256), (13, 6, 181, 256, 256), (13, 6, 181, 256, 128), (13, 6, 181, 181, 128),
        (13, 6, 181, 128, 128), (13, 6, 181, 128, 90), (13, 5, 181, 128, 90), (12, 5, 181, 128, 90),
        (12, 5, 128, 128, 90), (12, 4, 128, 128, 90), (11, 4, 128, 128, 90), (11, 4, 128, 64, 90),
        (11, 4, 128, 64, 64), (11, 4, 64, 64, 64), (10, 4, 64, 64, 64), (10, 4, 64, 32, 64)]
]
DEFAULT_LEVEL = 9


@dataclass(kw_only=True)
class Options(CodecOptions):
    """Encoder settings of the sogv2 profile (the shared ones are `CodecOptions`'). None of them changes the
    format: every value is a v2 code. The defaults are rung `DEFAULT_LEVEL` of `LEVELS`."""

    means_bits: float = LEVELS[DEFAULT_LEVEL]["means_bits"]  #: position lattice: every 2^(16-bits)-th code, 8..16
    quat_bits: float = LEVELS[DEFAULT_LEVEL]["quat_bits"]    #: rotation lattice: every 2^(7-bits)-th code, 4..8
    scale_levels: int = LEVELS[DEFAULT_LEVEL]["scale_levels"]  #: scale codebook entries used, 2..256
    color_levels: int = LEVELS[DEFAULT_LEVEL]["color_levels"]  #: sh0 codebook entries used, 2..256
    sh_levels: int = LEVELS[DEFAULT_LEVEL]["sh_levels"]        #: SH palette codebook entries used, 2..256
    #: scale-aware positions: a scene whose Gaussians are small for its position lattice gets whole bits more
    #: (`means_bits_for`); this is the median (position step at ``means_bits`` / mean scale) ``means_bits`` is
    #: meant for. None: ``means_bits`` as given
    means_step_ratio: float | None = 0.05
    #: size-aware rotations: a scene whose Gaussians are large for its position lattice (`median_step_ratio` under
    #: this) gets whole bits more for rotations (`quat_bits_for`): a rotation error t moves a Gaussian's mass by
    #: about t x its size, a position error by the step. None: ``quat_bits`` as given
    quat_step_ratio: float | None = 0.05
    opacity_bits: float = 8            #: opacity lattice in the sh0 alpha: every 2^(8-bits)-th value, 4..8
    layers: int = 1                    #: importance layers (row blocks of the grid; 1: one grid, the default)
    #: store coarser layers' scales with fewer levels of their own (off: v2's 256 entries are few already)
    layer_scale_drops: bool = False


PRESETS: dict[str, dict] = {
    "small": {"palette_size": 32768, "palette_per": 12},  # a PSNR target (`PRESET_TARGET`)
    "default": {},
    "high": {**LEVELS[0], "palette_size": 65536, "palette_per": 4, "kmeans_iters": 15},
}
#: presets that are a quality target: the smallest file whose tuning views (`sog.rate`, on
#: `sog.render.views.search_cameras`) reach this `RateTarget` against the input's renders; no fixed bit depths suit
#: every scene. "small" "looks the same": 40 dB at the 10th-percentile view, 35 dB at the worst, plus a guard
#: (`sog.metrics.SMALL_TARGET`, docs/profiles.md)
PRESET_TARGET: dict[str, RateTarget] = {"small": SMALL_TARGET}


def check_options(options: Options) -> None:
    if not (8 <= options.means_bits <= 16 and 4 <= options.quat_bits <= 8 and 4 <= options.opacity_bits <= 8
            and 2 <= options.scale_levels <= 256 and 2 <= options.color_levels <= 256
            and 2 <= options.sh_levels <= 256):
        raise SogError("sogv2: means_bits must be 8..16, quat_bits and opacity_bits 4..8, scale, color and SH "
                       "levels 2..256")
    check_shared(options)


def median_step_ratio(lmeans: np.ndarray, log_scales: np.ndarray, bits: float) -> float:
    """The median over Gaussians of (position step / mean scale): the step of the coarsest axis of a ``bits``-bit
    lattice over the log-space span of ``lmeans`` (N, 3), in world units at the Gaussian's position; the mean of
    exp(``log_scales``) (N, 3)."""
    span = lmeans.max(0) - lmeans.min(0)
    step = np.exp(np.abs(lmeans)) * span / 2.0 ** bits  # d(world)/d(log) = e^|l|
    return float(np.median(step.max(1) / np.exp(log_scales).mean(1)))


def extra_bits(r: float, ratio: float | None) -> int:
    """round(log2(``r`` / ``ratio``)): how many octaves a scene's `median_step_ratio` ``r`` lies above the ``ratio`` a
    lattice was chosen for (negative: below); 0 when ``ratio`` is None or ``r`` is not a positive number."""
    if ratio is None or not (r > 0 and math.isfinite(r)):
        return 0
    return int(round(math.log2(r / ratio)))


def means_bits_for(r: float, bits: float, ratio: float | None) -> float:
    """``bits`` plus the whole bits (up to 16) that bring a scene's `median_step_ratio` ``r`` (at ``bits``) down to
    about ``ratio`` (`extra_bits`); never fewer bits (the default ``ratio`` is that of the scenes the default rung
    was chosen on)."""
    return min(16.0, bits + max(0, extra_bits(r, ratio)))


def quat_bits_for(r: float, quat_bits: float, ratio: float | None) -> float:
    """``quat_bits`` plus the whole bits (up to 8, every code) that a scene whose `median_step_ratio` ``r`` (at its
    position bits) is below ``ratio`` needs to keep rotations as fine as positions: a rotation error t displaces a
    Gaussian's mass by about t x its size, a position error by the lattice step, so Gaussians 2x larger for the same
    step need rotation steps half as large (`extra_bits`, rounded to the nearest bit); never fewer bits."""
    return min(8.0, quat_bits + max(0, -extra_bits(r, ratio)))


def lattice_step(bits: float, full: int) -> int:
    """Code step of a ``bits``-bit lattice inside a ``full``-bit field: round(2^(full - bits)), at least 1."""
    return max(1, int(round(2.0 ** (full - bits))))


#: significant decimal digits of a codebook entry in meta.json: a v2 meta.json is stored, not deflated, and three
#: 256-entry lists of full float reprs are long; 5 digits move an entry by at most 5e-5 of its value, far below
#: the codebooks' spacing
CODEBOOK_DIGITS = 5


def short_levels(levels: np.ndarray) -> np.ndarray:
    """``levels`` (k,) rounded to `CODEBOOK_DIGITS` significant digits (what meta.json holds), float64 ascending."""
    return np.sort(np.array([float(f"{float(v):.{CODEBOOK_DIGITS}g}") for v in np.asarray(levels).reshape(-1)]))


def padded_codebook(levels: np.ndarray) -> list[float]:
    """A v2 codebook for meta.json: exactly 256 entries (``levels`` ascending, as `short_levels` rounds them; the last
    one repeated)."""
    levels = [float(f"{float(v):.{CODEBOOK_DIGITS}g}") for v in np.asarray(levels).reshape(-1)]
    return levels + [levels[-1]] * (256 - len(levels))


#: the fewest of the 256 codebook entries the first (finest) layer keeps for its own levels
FIRST_SHARE = 128


def layered_codebook(values: np.ndarray, weights: np.ndarray | None, parts: list[slice], used: list[int],
                     density: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """One 256-entry v2 codebook shared by row-block layers, each labelled at its own depth.

    ``values`` (N, C) in file order, ``parts`` the layers' rows, ``used[k]`` the levels layer k is stored with
    (finest first). Each coarser layer gets ``used[k]`` levels of its own, spaced for its own values
    (`quantize.density_levels`: the less important Gaussians sit elsewhere than the first layer's, and every
    2^d-th level of the first layer's codebook left them in its gaps) when it is stored at least one step coarser
    than the first (under 128 levels); the first layer gets the rest of the 256 (at least `FIRST_SHARE`) and, like
    a layer stored as finely as it, labels over all entries. Returns ``(codebook (<= 256,) float64 ascending,
    labels (N, C) uint8)``."""
    first_used = int(used[0])
    own = [int(u) if u <= first_used // 2 else 0 for u in used[1:]]
    if sum(own) > 256 - FIRST_SHARE:  # scale the coarse layers' sets down to leave the first layer its share
        own = [max(2, (u * (256 - FIRST_SHARE)) // sum(own)) if u else 0 for u in own]
    first = max(2, min(first_used, 256 - sum(own)))
    w = None if weights is None else np.asarray(weights)
    # the first set is fitted on every layer that labels over all entries (the first and those without a set)
    shared = np.concatenate([np.arange(n)[part] for part, m in zip(parts, [1, *own]) if m == 0 or part is parts[0]
                             for n in [len(values)]])
    sets = [short_levels(density_levels(values[shared] if k == 0 else values[part], m,
                                        None if w is None else (w[shared] if k == 0 else w[part]), *density)[0])
            if m else None for k, (part, m) in enumerate(zip(parts, [first, *own]))]
    codebook = np.unique(np.concatenate([s for s in sets if s is not None]))  # ascending
    if len(codebook) > 256:
        raise SogError(f"sogv2: {len(codebook)} codebook entries (at most 256)")
    labels = np.empty(values.shape, np.uint8)
    for k, (part, levels) in enumerate(zip(parts, sets)):
        keep = np.arange(len(codebook)) if levels is None or k == 0 else np.searchsorted(codebook, np.unique(levels))
        flat = np.asarray(values[part], np.float64).reshape(-1)
        labels[part] = keep[nearest_sorted(codebook[keep], flat)].reshape(values[part].shape)
    return codebook, labels


def check_blocks(layers: list[Layer]) -> int:
    """The grid width of ``layers`` stacked as row blocks; `SogError` unless every layer but the last fills whole
    rows of one width (a v2 grid has no gaps: Gaussian i is texel i)."""
    width = layers[0].width
    for i, layer in enumerate(layers):
        n = len(layer.splats)
        if layer.width != width or layer.width * layer.height < n:
            raise SogError(f"sogv2 layer {i}: a {layer.width}x{layer.height} block for {n} Gaussians on a "
                           f"{width}-wide grid")
        if i < len(layers) - 1 and n != layer.width * layer.height:
            raise SogError(f"sogv2 layer {i} holds {n} Gaussians: every layer but the last must fill whole rows "
                           f"of the {width}-wide grid")
    return width


class V2Planes:
    """The WebP planes of one ``width`` x ``height`` v2 grid of ``n`` Gaussians, encoded in a few threads while the
    next ones are computed (Pillow's encoder releases the GIL); `files` keeps their order, and each is the bytes
    one call gives. Use it as a context manager (the threads end with it)."""

    def __init__(self, width: int, height: int, n: int, effort: int, progress=None, raw: bool = False):
        self.width, self.height, self.n, self.effort, self.raw = width, height, n, effort, raw
        self.tick = progress or (lambda name: None)
        workers = 1 if raw else min(4, os.cpu_count() or 1)  # not torch's count: `compress` runs torch on one thread
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self.encoded: dict[str, bytes | np.ndarray | Future] = {}

    def __enter__(self) -> V2Planes:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool:
            self.pool.shutdown()

    def image(self, name: str, array: np.ndarray) -> None:
        """Encode ``array`` (H, W, 4) uint8 as file ``name`` (``raw``: keep the array itself)."""
        if self.raw:
            self.encoded[name] = array
            return
        self.encoded[name] = (self.pool.submit(encode_image, array, "webp", self.effort) if self.pool
                              else encode_image(array, "webp", self.effort))

    def plane(self, name: str, rgba: np.ndarray) -> None:
        """Encode ``rgba`` (N, 4) uint8, Gaussian i at texel i, as file ``name``."""
        img = np.empty((self.width * self.height, 4), np.uint8)
        img[:self.n] = rgba
        img[self.n:] = rgba[-1]  # padding repeats the last texel: no edge for the predictor (readers stop at count)
        self.image(name, img.reshape(self.height, self.width, 4))

    def files(self) -> dict[str, bytes]:
        """File name -> bytes (``raw``: the (H, W, 4) uint8 arrays), in the order encoded (waits for the threads)."""
        files: dict[str, bytes] = {}
        for name, data in self.encoded.items():
            files[name] = data.result() if isinstance(data, Future) else data
            self.tick(name)
        return files


def layer_settings(options: Options, layers: list[Layer], lmeans: np.ndarray, scales: np.ndarray) -> list[Options]:
    """The settings each layer is stored with: ``options`` made coarser by its drops (`layer_options`; every layer
    keeps the one scale codebook's levels unless ``layer_scale_drops``), plus the whole bits the scene's size needs
    for positions and rotations (`means_bits_for`, `quat_bits_for`, measured on the log-space positions ``lmeans``
    (N, 3) and log-scales ``scales`` (N, 3)), the same for every layer."""
    per = [layer_options(options, layer_drops(options, i, layer)) for i, layer in enumerate(layers)]
    if not options.layer_scale_drops:  # every layer labels over the one 256-entry scale codebook
        per = [replace(opts, scale_levels=options.scale_levels) for opts in per]
    # the lattices' size-aware bits, from one measure of how large the Gaussians are for the position lattice
    r = median_step_ratio(lmeans, scales, options.means_bits) if len(lmeans) else math.nan
    bits = means_bits_for(r, options.means_bits, options.means_step_ratio)
    if bits != options.means_bits:  # every layer's lattice gets the same extra bits
        per = [replace(opts, means_bits=min(16.0, opts.means_bits + bits - options.means_bits)) for opts in per]
    qbits = quat_bits_for(r, options.quat_bits, options.quat_step_ratio)
    if qbits != options.quat_bits:
        per = [replace(opts, quat_bits=min(8.0, opts.quat_bits + qbits - options.quat_bits)) for opts in per]
    return per


def encode_layers(layers: list[Layer], options: Options | None = None, progress=None,
                  sh_palette: tuple[torch.Tensor, torch.Tensor] | None = None,
                  raw: bool = False) -> tuple[dict, dict[str, bytes]]:
    """Encode ``layers`` (finest first, each in grid order, stacked as row blocks of one grid) into one SOG v2 file;
    returns ``(meta, files)``. Layer k is stored with its own settings (`layer_settings`: its drops, its own plus
    ``options.layer_steps[k]``, through `sog.codec.layers.layer_options`). ``sh_palette``: the palette already
    fitted on the layers' concatenation (band-limited), as the rate search passes it. One function per attribute
    (`encode_means`, `encode_quats`, `encode_scales`, `encode_colour`, `encode_shn`); `sog.codec.v2.decode` reads
    the file. ``raw``: the planes as (H, W, 4) uint8 arrays, not compressed (`quantise`)."""
    options = options or Options()
    check_options(options)
    layers = [Layer(band_limited(layer.splats, options), layer.width, layer.height, layer.drops) for layer in layers]
    width = check_blocks(layers)
    height = sum(layer.height for layer in layers)
    if width > 16383 or height > 16383:
        raise SogError(f"grid {width}x{height} exceeds WebP's 16383-pixel limit")
    splats = Splats.concat([layer.splats for layer in layers]) if len(layers) > 1 else layers[0].splats  # no copy
    n = len(splats)
    bounds = np.cumsum([0] + [len(layer.splats) for layer in layers])
    rows = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    lmeans = log_transform(splats.means.detach().cpu().double().numpy())
    scales64 = splats.scales.detach().cpu().double().numpy()
    per = layer_settings(options, layers, lmeans, scales64)
    with V2Planes(width, height, n, options.effort, progress, raw=raw) as out:
        means_meta = encode_means(lmeans, rows, per, out)
        # rotations: canonical, the same covariance with permuted scales (which the scale codebook then holds)
        quats, log_scales = canonical_rotations(splats.quats.detach().cpu().double().numpy(), scales64)
        quats_meta = encode_quats(quats, rows, per, out)
        scales_meta = encode_scales(log_scales, splats.opacities, rows, per, options, out)
        sh0_meta = encode_colour(splats, rows, per, options, out)
        meta = {"version": 2, "asset": {"generator": GENERATOR}, "count": n, "means": means_meta,
                "scales": scales_meta, "quats": quats_meta, "sh0": sh0_meta}
        if splats.shN.shape[1]:
            meta["shN"] = encode_shn(splats, options, out, sh_palette)
        return meta, out.files()


def encode_means(lmeans: np.ndarray, rows: list[slice], per: list[Options], out: V2Planes) -> dict:
    """Positions: 16-bit codes of the log-space positions ``lmeans`` (N, 3), layer ``rows[k]`` on a lattice of every
    `lattice_step`-th code of its ``per[k].means_bits``; the finest layer's top code is the box's max (``maxs`` is
    stretched to match). Planes ``means_l`` and ``means_u``; returns ``meta["means"]``."""
    n = len(lmeans)
    mins, maxs = lmeans.min(0), lmeans.max(0)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    step0 = lattice_step(per[0].means_bits, 16)
    top0 = 65535 // step0 * step0
    exact = (lmeans - mins) / span * top0
    q = np.empty((n, 3), np.int64)
    for part, opts in zip(rows, per):
        step = lattice_step(opts.means_bits, 16)
        q[part] = np.clip(np.rint(exact[part] / step) * step, 0, 65535 // step * step)
    stored_maxs = mins + span * 65535 / top0
    ones = np.full((n, 1), 255, np.uint8)
    out.plane("means_l.webp", np.concatenate([(q & 0xFF).astype(np.uint8), ones], 1))
    out.plane("means_u.webp", np.concatenate([(q >> 8).astype(np.uint8), ones], 1))
    return {"mins": mins.tolist(), "maxs": stored_maxs.tolist(), "files": ["means_l.webp", "means_u.webp"]}


def encode_quats(quats: np.ndarray, rows: list[slice], per: list[Options], out: V2Planes) -> dict:
    """Rotations: canonical ``quats`` (N, 4) as smallest-three codes, layer ``rows[k]`` on a lattice of every
    `lattice_step`-th code of its ``per[k].quat_bits`` around 128. Plane ``quats``; returns ``meta["quats"]``."""
    n = len(quats)
    largest = np.abs(quats).argmax(1)
    sign = np.where(quats[np.arange(n), largest] < 0, -1.0, 1.0)
    kept = np.take_along_axis(quats * sign[:, None] * SQRT2, QUAT_KEEP[largest], axis=1)
    codes = 255 * (kept * 0.5 + 0.5)
    rgb = np.empty((n, 3), np.int64)
    for part, opts in zip(rows, per):
        step = lattice_step(opts.quat_bits, QUAT_FULL_BITS)
        rgb[part] = 128 + np.rint((codes[part] - 128) / step) * step
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    out.plane("quats.webp", np.concatenate([rgb, (252 + largest).astype(np.uint8)[:, None]], 1))
    return {"files": ["quats.webp"]}


def encode_scales(log_scales: np.ndarray, opacities: torch.Tensor, rows: list[slice], per: list[Options],
                  options: Options, out: V2Planes) -> dict:
    """Log-scales (N, 3): one 256-entry codebook spaced for entropy-coded labels (`layered_codebook`, weighted by
    `scale_weights` of the ``opacities`` (N,) logits); a coarser layer uses fewer of its entries. Plane ``scales``;
    returns ``meta["scales"]``."""
    sw = scale_weights(log_scales, opacities, options.scale_weight) if options.scale_weight else None
    scale_cb, scale_idx = layered_codebook(log_scales, sw, rows, [o.scale_levels for o in per], options.scale_density)
    out.plane("scales.webp", np.concatenate([scale_idx, np.full((len(log_scales), 1), 255, np.uint8)], 1))
    return {"codebook": padded_codebook(scale_cb), "files": ["scales.webp"]}


def encode_colour(splats: Splats, rows: list[slice], per: list[Options], options: Options, out: V2Planes) -> dict:
    """Colour: sh0 as `encode_scales` stores scales (unweighted); opacity in its alpha on a lattice of every
    2^(8 - ``opacity_bits``)-th value anchored at 255 (opaque stays opaque). Plane ``sh0``; returns
    ``meta["sh0"]``."""
    sh0 = splats.sh0.detach().cpu().numpy().reshape(len(splats), 3)
    sh0_cb, sh0_idx = layered_codebook(sh0, None, rows, [o.color_levels for o in per], options.color_density)
    alpha = 255 * torch.sigmoid(splats.opacities.detach().cpu().double()).numpy()
    step = lattice_step(options.opacity_bits, 8)
    alpha = np.clip(255 - np.rint((255 - alpha) / step) * step, 0, 255).astype(np.uint8)[:, None]
    out.plane("sh0.webp", np.concatenate([sh0_idx, alpha], 1))
    return {"codebook": padded_codebook(sh0_cb), "files": ["sh0.webp"]}


def encode_shn(splats: Splats, options: Options, out: V2Planes,
               sh_palette: tuple[torch.Tensor, torch.Tensor] | None) -> dict:
    """The higher SH bands: the palette (``sh_palette``, or `fit_sh_palette`; at most 65,536 entries for the 16-bit
    labels) as indices into a codebook of ``sh_levels`` of its 256 entries, 64 entries per row of
    ``shN_centroids``, and each Gaussian's label in ``shN_labels``. Returns ``meta["shN"]``."""
    n, k = len(splats), splats.shN.shape[1]
    centroids, labels = sh_palette if sh_palette is not None else fit_sh_palette(splats, options)
    out.tick("shN palette")
    c = centroids.shape[0]
    if c > 65536:
        raise SogError(f"sogv2: an SH palette of {c} entries does not fit 16-bit labels")
    cb = short_levels(codebook_1d(centroids.numpy(), options.sh_levels, seed=options.seed)[0])
    cidx = nearest_sorted(cb, centroids.numpy().astype(np.float64).reshape(-1)).reshape(c, 3 * k)
    pal_rows = math.ceil(c / 64)
    pal = np.zeros((pal_rows * 64, k, 4), np.uint8)
    pal[..., 3] = 255
    pal[:c, :, :3] = np.asarray(cidx, np.uint8).reshape(c, 3, k).transpose(0, 2, 1)
    out.image("shN_centroids.webp", pal.reshape(pal_rows, 64 * k, 4))
    lab = labels.numpy()
    texels = np.empty((n, 4), np.uint8)  # the 16-bit label: low byte in red, high byte in green
    texels[:, 0], texels[:, 1], texels[:, 2], texels[:, 3] = lab & 0xFF, lab >> 8, 0, 255
    out.plane("shN_labels.webp", texels)
    return {"count": int(c), "bands": splats.sh_degree, "codebook": padded_codebook(cb),
            "files": ["shN_centroids.webp", "shN_labels.webp"]}


def decode(meta: dict, read) -> Splats:
    """A sogv2 file is a plain SOG v2 file: `sog.codec.v2.decode`."""
    return decode_v2(meta, read)


def quantise(splats: Splats, options: Options | None = None) -> Splats:
    """``splats`` (N rows, any order) as a one-grid sogv2 file written with ``options`` decodes them, without the
    image codec: every lattice, codebook and canonical rotation of `encode_layers`, the lossless WebP left out
    (it changes no value). The higher SH bands are kept as they are (their palette is a k-means fit, refitted only
    by the encoder). Rows stay in the input's order; a rotation comes back canonical (`canonical_rotations`: the
    same covariance, its scales permuted to match). What the fine-tune's quantisation-aware steps train through
    (`sog.train.finetune`)."""
    from ..grid import grid_shape
    height, width = grid_shape(len(splats))
    plain = replace(splats, shN=splats.shN[:, :0]) if splats.shN.shape[1] else splats
    meta, planes = encode_layers([Layer(plain, width, height, {})], options, raw=True)
    out = decode_v2(meta, None, image=planes.__getitem__)
    return replace(out, shN=splats.shN.detach().clone()) if splats.shN.shape[1] else out


def row_blocks(plan: list[tuple[torch.Tensor, dict]], count: int) -> list[tuple[torch.Tensor, dict]]:
    """``plan`` (layers most important first, `layers.plan_importance_layers`) with its boundaries moved to whole
    rows of the ``count``-Gaussian grid (the nearest multiple of its width W); a layer left empty is dropped."""
    width = playcanvas_width(count)
    every = torch.cat([index for index, _ in plan])
    ends = np.cumsum([len(index) for index, _ in plan])
    cuts = [min(count, int(round(e / width)) * width) for e in ends[:-1]] + [count]
    out, start = [], 0
    for cut, (_, drops) in zip(cuts, plan):
        if cut > start:
            out.append((every[start:cut], drops))
            start = cut
    return out


def playcanvas_width(count: int) -> int:
    """The grid width W of a ``count``-Gaussian file (`sog.grid.grid_shape`)."""
    from ..grid import grid_shape
    return grid_shape(count)[1]


class SogV2Profile(Profile):
    """SOG v2 files spent for rate (`--profile sogv2`, the default): every v2 reader decodes them."""

    name = "sogv2"
    summary = "SOG v2 (PlayCanvas, SuperSplat, splat-transform, ... read it), rate-optimised"
    Options = Options
    presets = PRESETS
    preset_target = PRESET_TARGET
    compress_meta = False  # as PlayCanvas writes it
    ladder = LEVELS

    def check(self, options: Options) -> None:
        check_options(options)

    def wants_layers(self, count: int, options: Options) -> bool:
        return wants_layers(count, options)

    def plan_layers(self, splats, sensitivity, options):
        return row_blocks(plan_importance_layers(sensitivity, options), len(splats))

    def max_layers(self):
        return None

    def layer_shape(self, layer_count: int, total: int) -> tuple[int, int]:
        width = playcanvas_width(total)
        return -(-layer_count // width), width

    def fit_palette(self, splats, options):
        return stored_palette(splats, options)

    def encode(self, layers, options, progress=None, palette=None):
        return encode_layers(layers, options, progress=progress, sh_palette=palette)

    def quantiser(self, options):
        return lambda splats: quantise(splats, options)

    def claims(self, meta: dict) -> bool:
        return False  # its files are plain v2: the playcanvas profile reads them

    def decode(self, meta, read):
        return decode(meta, read)

    def grids(self, meta, read):
        return [grid_of(meta, read)]


PROFILE = SogV2Profile()
