"""Writer of Niantic's ``.spz``: version 3 by default (one gzip stream: the version Spark, the web viewer that reads
SPZ, opens; its 2.2.0 has no zstd), version 4 on request (one zstd stream per attribute, as splat-transform 3.x and
Niantic's current encoder write; about 4-7 % smaller, opened by neither browser viewer sog tests). The format's shape is
`sog.io.spz_format`; `sog.io.spz` reads the file back.

sog's choices inside the format's rules (`SpzSettings`; docs/formats.md has the measured reasons):

* the fractional bits of the 24-bit fixed-point positions are chosen per scene (`choose_fractional_bits`): the
  coarsest lattice whose step is at most ``position_ratio`` of a typical Gaussian's size (the median of the
  largest axis) and 4 times that share of a small one's (its 10th percentile), and never so many bits that a
  position overflows;
* SH on a lattice of every ``sh1_step``-th code (band 1) and ``sh_step``-th code (bands 2-3) around 128, as
  Niantic's encoder does with 5 and 4 bits (steps 8 and 16), but with any integer step: the reader decodes every
  byte, so the step is the writer's choice;
* rotations on a lattice of every ``rotation_step``-th 9-bit magnitude, and canonical
  (`sog.codec.rotation.canonical_rotations`: of the 24 rotations that give a Gaussian the same covariance, with
  its scales permuted to match, the one closest to the identity): the smallest-three words then always drop w
  and hold small components, a little more alike for the compressor (renders unchanged);
* the caller orders the Gaussians (`sog.pipeline.stream_order`: Morton) so that neighbours in the stream are
  neighbours in space, which the compressor's matches gain from.

`sog.codec.spz_profile` wraps these settings for ``--quality`` and ``--psnr`` (a ladder searched on tuning views).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import SogError
from ..splats import Splats
from . import spz_format as fmt
from .atomic import atomic_path
from .limits import check_writable

#: the default version: 3, which Spark 2.2.0 reads (it decompresses gzip only; a v4 file fails there)
VERSION = 3
MAX_COUNT = (1 << 32) - 1  #: the header's u32 count
#: zstd level by effort (`SpzSettings.effort`): probes of a search at 2, written files at 4 (the default)
ZSTD_LEVELS = {0: 3, 1: 6, 2: 9, 3: 15, 4: 19}
#: above this many raw bytes, effort 4 compresses at level 15 rather than 19 (a work budget: level 19 runs at a
#: few MB/s on one core; 1M SH-3 Gaussians are 65 MB)
BIG_RAW_BYTES = 16 << 20
#: SPZ v3's gzip level: 9, and 6 above `BIG_RAW_BYTES` (the same work budget: level 9 spends about 6x level 6's
#: time for about 2 % fewer bytes on 1M SH-3 Gaussians, docs/formats.md)
GZIP_LEVEL, GZIP_LEVEL_BIG = 9, 6


@dataclass(frozen=True)
class SpzSettings:
    """What the SPZ writer chooses inside the format. The defaults (``--quality default``) were picked on tuning
    views of the shared scenes: docs/formats.md."""

    #: position step at most this fraction of the median of the Gaussians' largest axis (`choose_fractional_bits`)
    position_ratio: float = 1 / 32
    fractional_bits: int | None = None  #: fixed fractional bits instead (0..30)
    sh1_step: int = 6                   #: SH band 1 on every 6th code (between Niantic's 5 and 6 bits)
    sh_step: int = 12                   #: SH bands 2-3 on every 12th code (between Niantic's 4 and 5 bits)
    rotation_step: int = 8              #: rotation magnitudes on every 8th 9-bit code (6 bits)
    effort: int = 4                     #: zstd level by `ZSTD_LEVELS` (v3: `gzip_level`)
    #: the (median, 10th percentile) of the Gaussians' largest axis that the position lattice is relative to
    #: (`choose_fractional_bits`); None: this scene's. A reduced scene takes its source's (`Profile.source_options`):
    #: merging removes the small Gaussians first, and the few left still need the source's lattice
    sizes: tuple[float, float] | None = None
    version: int = VERSION              #: 3 (one gzip stream) or 4 (zstd streams)

    def check(self) -> None:
        """Refuse (`SogError`) values the format or the writer cannot use."""
        if not self.position_ratio > 0:
            raise SogError(f"SPZ position_ratio must be positive, not {self.position_ratio}")
        if self.fractional_bits is not None and not 0 <= self.fractional_bits <= fmt.MAX_FRACTIONAL_BITS:
            raise SogError(f"SPZ fractional bits must be 0..{fmt.MAX_FRACTIONAL_BITS}, not {self.fractional_bits}")
        if not (1 <= self.sh1_step <= 128 and 1 <= self.sh_step <= 128):
            raise SogError(f"SPZ SH steps must be 1..128 codes, not {self.sh1_step}, {self.sh_step}")
        if not 1 <= self.rotation_step <= 511:
            raise SogError(f"SPZ rotation step must be 1..511 codes, not {self.rotation_step}")
        if self.effort not in ZSTD_LEVELS:
            raise SogError(f"SPZ effort must be one of {', '.join(map(str, ZSTD_LEVELS))}, not {self.effort}")
        if self.sizes is not None and not (len(self.sizes) == 2 and all(math.isfinite(v) and v > 0
                                                                         for v in self.sizes)):
            raise SogError(f"SPZ sizes must be two positive lengths (median, 10th percentile), not {self.sizes}")
        if self.version not in (3, 4):
            raise SogError(f"sog writes SPZ versions 3 and 4, not {self.version}")

    def as_dict(self) -> dict:
        return asdict(self)


#: a small Gaussian's (the 10th percentile of the largest axis) step may be this many times ``position_ratio``
SMALL_RATIO = 4


def size_percentiles(scales: np.ndarray) -> tuple[float, float]:
    """(median, 10th percentile) of the largest axis of Gaussians with log-scales ``scales`` (N, 3)."""
    largest = np.exp(np.asarray(scales, np.float64).max(1))
    return float(np.median(largest)), float(np.percentile(largest, 10))


def choose_fractional_bits(means: np.ndarray, scales: np.ndarray, position_ratio: float = 1 / 32,
                           sizes: tuple[float, float] | None = None) -> int:
    """Fractional bits for positions ``means`` (N, 3) of Gaussians with log-scales ``scales`` (N, 3): the fewest
    whose step 2^-bits is at most ``position_ratio`` times the median of the largest axis and at most
    `SMALL_RATIO` times that share of its 10th percentile (a lattice relative to the Gaussians' size, so the same
    at any scene scale; the second bound keeps close views of the small Gaussians sharp), capped where the largest
    |coordinate| would no longer fit 24-bit fixed point (`SogError` when even 0 bits do not fit). ``sizes``: that
    median and 10th percentile given (`size_percentiles` of another scene: the one a reduced scene came from)."""
    biggest = float(np.abs(np.asarray(means, np.float64)).max())
    # log2 of the quotient as a difference: a subnormal ``biggest`` would make the quotient itself infinite
    fit = fmt.MAX_FRACTIONAL_BITS if biggest == 0 else min(
        fmt.MAX_FRACTIONAL_BITS, math.floor(math.log2((1 << (fmt.POSITION_BITS - 1)) - 1) - math.log2(biggest)))
    if fit < 0:
        raise SogError(f"positions up to {biggest:.4g} do not fit SPZ's 24-bit fixed point (at most "
                       f"{fmt.position_limit(0):,.0f} with no fractional bits)")
    median, small = size_percentiles(scales) if sizes is None else sizes
    step = min(median, SMALL_RATIO * small) * position_ratio
    wanted = math.ceil(-math.log2(max(step, 2.0 ** -fmt.MAX_FRACTIONAL_BITS)))
    return max(0, min(fit, wanted))


def spz_blocks(splats: Splats, settings: SpzSettings = SpzSettings()) -> tuple[int, list[bytes]]:
    """``(fractional bits, raw blocks)``: the attribute blocks of ``splats`` (in the PLY frame; stored in SPZ's RUB
    frame) in file order (`spz_format.block_sizes`), quantised as the format says with ``settings``. Refuses
    (`SogError`) what the format cannot hold: more than 2^32 - 1 Gaussians, positions beyond the 24-bit fixed
    point, SH degree above 3."""
    settings.check()
    check_writable(splats, "SPZ", MAX_COUNT, fmt.MAX_SH_DEGREE)
    n, k = len(splats), int(splats.shN.shape[1])
    from ..codec.rotation import canonical_rotations

    means = splats.means.detach().cpu().numpy() * np.float32([1, -1, -1])  # to SPZ's frame (`fmt.turn_x180`)
    quats, scales = canonical_rotations(splats.quats.detach().cpu().double().numpy() * [1, 1, -1, -1],
                                        splats.scales.detach().cpu().numpy())
    shN = splats.shN.detach().cpu().numpy()  # turned inside `quantise_sh`
    frac = settings.fractional_bits
    if frac is None:
        frac = choose_fractional_bits(means, splats.scales.detach().cpu().double().numpy(), settings.position_ratio,
                                      settings.sizes)
    biggest = float(np.abs(means).max())
    if biggest > fmt.position_limit(frac):
        raise SogError(f"positions up to {biggest:.4g} do not fit SPZ's 24-bit fixed point with {frac} fractional "
                       f"bits (at most {fmt.position_limit(frac):.4g}); choose fewer")
    blocks = [
        fmt.pack_positions(fmt.quantise_positions(means, frac)),
        fmt.quantise_alpha(splats.opacities.detach().cpu().numpy()).tobytes(),
        fmt.quantise_colour(splats.sh0.detach().cpu().numpy().reshape(n, 3)).tobytes(),
        fmt.quantise_scales(scales).tobytes(),
        fmt.quantise_rotations(quats, settings.rotation_step).astype("<u4").tobytes(),
    ]
    if k:
        signs = fmt.RUB_TO_RDF_SH[:k]
        codes = np.concatenate([fmt.quantise_sh(shN[:, :3], settings.sh1_step, signs[:3]),
                                fmt.quantise_sh(shN[:, 3:], settings.sh_step, signs[3:])], 1)
        blocks.append(codes.tobytes())
    return frac, blocks


def zstd_level(settings: SpzSettings, raw_bytes: int) -> int:
    """The zstd level of ``settings.effort`` for ``raw_bytes`` of blocks (effort 4 on more than `BIG_RAW_BYTES`:
    level 15)."""
    level = ZSTD_LEVELS[settings.effort]
    return min(level, ZSTD_LEVELS[3]) if raw_bytes > BIG_RAW_BYTES else level


def gzip_level(raw_bytes: int) -> int:
    """SPZ v3's gzip level for ``raw_bytes`` of header and blocks: `GZIP_LEVEL`, or `GZIP_LEVEL_BIG` above
    `BIG_RAW_BYTES` (counted in bytes, not seconds, so the same scene gets the same level on every machine)."""
    return GZIP_LEVEL_BIG if raw_bytes > BIG_RAW_BYTES else GZIP_LEVEL


def encode_spz(splats: Splats, settings: SpzSettings | None = None, **options) -> bytes:
    """The bytes of a ``.spz`` holding ``splats`` in the order given, with ``settings`` (or `SpzSettings` built
    from ``options``; `spz_blocks` quantises and refuses)."""
    if settings is None:
        try:
            settings = SpzSettings(**options)
        except TypeError as exc:
            raise SogError(f"SPZ writer: {exc}") from None
    frac, blocks = spz_blocks(splats, settings)
    n, degree = len(splats), splats.sh_degree
    if settings.version == 3:
        header = struct.pack(fmt.HEADER, fmt.MAGIC, 3, n, degree, frac, 0, 0)
        raw = header + b"".join(blocks)
        return gzip.compress(raw, compresslevel=gzip_level(len(raw)), mtime=0)
    return fmt.pack_v4(n, degree, frac, blocks, zstd_level(settings, sum(map(len, blocks))))


def write_spz(splats: Splats, path: str | os.PathLike, *, overwrite: bool = False,
              settings: SpzSettings | None = None, **options) -> None:
    """Write ``splats`` as a ``.spz`` at ``path`` atomically (``settings``, or `SpzSettings` fields as options)."""
    data = encode_spz(splats, settings, **options)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
