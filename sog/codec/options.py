"""The settings every rate-optimised profile shares: one base dataclass (`CodecOptions`) and its checks.

A profile's ``Options`` subclasses `CodecOptions`: it gives the ladder settings (``means_bits``, ``quat_bits``,
``scale_levels``, ``color_levels``, ``sh_levels``) and ``layers`` its own defaults and adds the fields only it has.
What the settings mean inside a file is each profile's own business (docs/profiles.md); the names, and the
shared checks of `check_options`, are the same everywhere, so the toolkit (`sog.codec.layers`,
`sog.codec.palette`) and the rate search (`sog.rate`) read them from either profile's options.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SogError


@dataclass(kw_only=True)
class CodecOptions:
    """Encoder settings shared by the native and sogv2 profiles (their ``Options`` give the fields without a default
    here their defaults)."""

    effort: int = 4                    #: image-codec effort 0..6
    seed: int = 0
    # -- the rate search's ladder (`sog.rate`): each profile's default is a rung of its ``LEVELS``
    means_bits: float                  #: bits per position axis; fractional: round(2^bits) levels
    quat_bits: float                   #: bits per stored rotation component; may be fractional
    scale_levels: int                  #: entries of the log-scale codebook used
    color_levels: int                  #: entries of the sh0 codebook used
    sh_levels: int                     #: entries of the SH palette's coefficient codebook used
    opacity_bits: float = 8            #: bits of opacity, 4..8
    # -- the SH palette (`sog.codec.palette.fit_sh_palette`)
    palette_size: int | None = 16384   #: cap on SH palette entries (<= 65536); None = splat-transform's rule
    palette_per: int = 16              #: >0: at most N / palette_per entries (a power of two, >= 256)
    kmeans_iters: int = 10
    #: >0: SH rows with at most N / this distinct values (<= 65536) are kept exactly (a source that is already
    #: palettised, e.g. a SOG, keeps its palette); a scene that is not palettised has N distinct rows
    exact_palette_per: float = 1.5
    weighted: bool = True              #: weight the SH k-means by opacity x footprint
    sh_degree: int | None = None       #: keep at most this SH degree (None = all; `sog.codec.layers.band_limited`)
    # -- codebooks spaced for entropy-coded labels (`sog.codec.quantize.density_levels`)
    #: the scale codebook weights values by (opacity x scale^2)^this (0: unweighted; `quantize.scale_weights`)
    scale_weight: float = 0.8
    #: the scale codebook's levels have point density p^a w^b (p: the log-scales' density, w: their weight)
    scale_density: tuple[float, float] | None = (0.15, 0.3)
    color_density: tuple[float, float] | None = (0.15, 0.0)  #: the same for the sh0 codebook
    # -- importance layers (`sog.codec.layers`)
    layers: int                        #: split the Gaussians into up to this many importance layers (1: one grid)
    layer_min: int = 16384             #: ... of at least this many Gaussians each (smaller scenes: fewer layers)
    layer_max_drop: int = 3            #: a layer's settings are at most this many steps coarser than the first's
    #: relative layer sizes, most important first (None: `sog.codec.layers.DEFAULT_SHARES`, or equal parts)
    layer_shares: tuple[float, ...] | None = None
    #: per layer, steps added to its drops, in the order of `sog.codec.layers.LAYER_STEPPED` (the rate search's
    #: per-layer refinement)
    layer_steps: tuple[tuple[float, ...], ...] | None = None


def check_layer_shares(shares: tuple[float, ...], layers: int) -> None:
    """Raise `SogError` unless ``shares`` are ``layers`` positive numbers (relative layer sizes)."""
    if len(shares) != layers or any(not share > 0 for share in shares):
        raise SogError(f"layer_shares must be {layers} positive numbers (one per layer), not {list(shares)}")


def check_options(options: CodecOptions) -> None:
    """Raise `SogError` for layer settings the pipeline would trip over after the slow work."""
    if options.layers < 1:
        raise SogError(f"layers must be 1 or more, not {options.layers}")
    if options.layer_shares is not None:
        check_layer_shares(options.layer_shares, options.layers)
