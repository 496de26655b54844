"""Writer of Niantic's ``.spz``, version 3 (one gzip stream; the version most SPZ readers take). The format's shape
is `sog.io.spz_format`; `sog.io.spz` reads the file back.

sog's choices inside the format's rules:

* the fractional bits of the 24-bit fixed-point positions are chosen per scene (`choose_fractional_bits`): a step
  of at most `STEP_OF_SCALE` of a small Gaussian's size (the 10th percentile of the smallest axis), so the error
  stays a few percent of the Gaussians' own size at any scene scale, and never so many bits that a position
  overflows;
* SH on coarser lattices of the 8-bit codes (band 1 on `sh_bits[0]`, bands 2-3 on `sh_bits[1]` bits), as Niantic's
  own encoder does: fewer distinct bytes for gzip;
* canonical rotations (`sog.codec.rotation.canonical_rotations`: of the 24 rotations that give a Gaussian the same
  covariance, with its scales permuted to match, the one closest to the identity): the smallest-three words then
  always drop w and hold small components, a little more alike for gzip (renders unchanged);
* the caller orders the Gaussians (`sog.pipeline.stream_order`: Morton) so that neighbours in the stream are
  neighbours in space, which gzip's matches gain from.
"""

from __future__ import annotations

import gzip
import math
import os
import struct

import numpy as np

from ..errors import SogError
from ..splats import Splats
from . import spz_format as fmt
from .atomic import atomic_path
from .limits import check_writable

VERSION = 3
#: the position step is at most this fraction of the 10th percentile of the Gaussians' smallest axis
STEP_OF_SCALE = 1 / 16
DEFAULT_SH_BITS = (5, 4)
MAX_COUNT = (1 << 32) - 1  #: the header's u32 count


def choose_fractional_bits(means: np.ndarray, scales: np.ndarray, step_of_scale: float = STEP_OF_SCALE) -> int:
    """Fractional bits for positions ``means`` (N, 3) of Gaussians with log-scales ``scales`` (N, 3): the fewest
    whose step 2^-bits is at most ``step_of_scale`` times the 10th percentile of the smallest axis, capped where
    the largest |coordinate| would no longer fit 24-bit fixed point (`SogError` when even 0 bits do not fit)."""
    biggest = float(np.abs(np.asarray(means, np.float64)).max())
    fit = fmt.MAX_FRACTIONAL_BITS if biggest == 0 else min(
        fmt.MAX_FRACTIONAL_BITS, math.floor(math.log2(((1 << (fmt.POSITION_BITS - 1)) - 1) / biggest)))
    if fit < 0:
        raise SogError(f"positions up to {biggest:.4g} do not fit SPZ's 24-bit fixed point (at most "
                       f"{fmt.position_limit(0):,.0f} with no fractional bits)")
    small = float(np.percentile(np.exp(np.asarray(scales, np.float64).min(1)), 10))
    wanted = math.ceil(-math.log2(max(small * step_of_scale, 2.0 ** -fmt.MAX_FRACTIONAL_BITS)))
    return max(0, min(fit, wanted))


def encode_spz(splats: Splats, fractional_bits: int | None = None,
               sh_bits: tuple[int, int] = DEFAULT_SH_BITS, level: int = 9) -> bytes:
    """The bytes of a v3 ``.spz`` holding ``splats`` (in the PLY frame; written in SPZ's RUB frame), in the order
    given. Refuses (`SogError`) what the format cannot hold: more than 2^32 - 1 Gaussians, positions beyond the
    24-bit fixed point, SH degree above 3."""
    check_writable(splats, f"SPZ v{VERSION}", MAX_COUNT, fmt.MAX_SH_DEGREE)
    n, k = len(splats), int(splats.shN.shape[1])
    if not all(1 <= b <= 8 for b in sh_bits):
        raise SogError(f"SPZ SH bits must be 1..8, not {sh_bits}")
    from ..codec.rotation import canonical_rotations

    means = splats.means.detach().cpu().numpy() * np.float32([1, -1, -1])  # to SPZ's frame (`fmt.turn_x180`)
    quats, scales = canonical_rotations(splats.quats.detach().cpu().double().numpy() * [1, 1, -1, -1],
                                        splats.scales.detach().cpu().numpy())
    shN = splats.shN.detach().cpu().numpy()  # turned inside `quantise_sh`
    if fractional_bits is None:
        fractional_bits = choose_fractional_bits(means, splats.scales.detach().cpu().double().numpy())
    frac = int(fractional_bits)
    if not 0 <= frac <= fmt.MAX_FRACTIONAL_BITS:
        raise SogError(f"SPZ fractional bits must be 0..{fmt.MAX_FRACTIONAL_BITS}, not {frac}")
    biggest = float(np.abs(means).max())
    if biggest > fmt.position_limit(frac):
        raise SogError(f"positions up to {biggest:.4g} do not fit SPZ's 24-bit fixed point with {frac} fractional "
                       f"bits (at most {fmt.position_limit(frac):.4g}); choose fewer")
    blocks = [
        struct.pack(fmt.HEADER, fmt.MAGIC, VERSION, n, splats.sh_degree, frac, 0, 0),
        fmt.pack_positions(fmt.quantise_positions(means, frac)),
        fmt.quantise_alpha(splats.opacities.detach().cpu().numpy()).tobytes(),
        fmt.quantise_colour(splats.sh0.detach().cpu().numpy().reshape(n, 3)).tobytes(),
        fmt.quantise_scales(scales).tobytes(),
        fmt.quantise_rotations(quats).astype("<u4").tobytes(),
    ]
    if k:
        signs = fmt.RUB_TO_RDF_SH[:k]
        codes = np.concatenate([fmt.quantise_sh(shN[:, :3], sh_bits[0], signs[:3]),
                                fmt.quantise_sh(shN[:, 3:], sh_bits[1], signs[3:])], 1)
        blocks.append(codes.tobytes())
    return gzip.compress(b"".join(blocks), compresslevel=level, mtime=0)


def write_spz(splats: Splats, path: str | os.PathLike, *, overwrite: bool = False, **options) -> None:
    """Write ``splats`` as a v3 ``.spz`` at ``path`` atomically (options: `encode_spz`'s)."""
    data = encode_spz(splats, **options)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
