"""The SPZ writer's settings (`sog.io.spz_writer.SpzSettings`) as a `Profile`, so that ``--quality`` and
``--psnr`` choose them the way they choose a SOG profile's: presets, and a ladder that `sog.rate.RateSearch`
searches on tuning views (encode, decode, render each probe). It is not a SOG profile (not in `PROFILES`): its
"file" is one ``scene.spz`` entry, and the pipeline writes that entry's bytes as the ``.spz``.

The ladder runs from finest to coarsest, each rung no finer than the one before in any setting: the position
lattice (``position_ratio``), the SH lattices (``sh1_step``, ``sh_step``) and the rotation lattice
(``rotation_step``). Its steps and the default rung were chosen on tuning views (docs/formats.md).
"""

from __future__ import annotations

from ..errors import SogError
from ..metrics import SMALL_TARGET, RateTarget
from ..splats import Splats
from .base import Layer, Profile

FILE = "scene.spz"

#: finest (largest file) first; every setting coarser or equal along the list; rung 5 is `SpzSettings`' default.
#: Rotation steps are powers of two: their words keep whole zero bits, which the compressor gains from (a step of
#: 3 made kacytran's rotations larger than a step of 2)
LEVELS: list[dict] = [
    {"position_ratio": 1 / 128, "sh1_step": 1, "sh_step": 1, "rotation_step": 1},
    {"position_ratio": 1 / 64, "sh1_step": 2, "sh_step": 2, "rotation_step": 1},
    {"position_ratio": 1 / 64, "sh1_step": 4, "sh_step": 4, "rotation_step": 2},
    {"position_ratio": 1 / 32, "sh1_step": 4, "sh_step": 6, "rotation_step": 2},
    {"position_ratio": 1 / 32, "sh1_step": 4, "sh_step": 8, "rotation_step": 4},
    {"position_ratio": 1 / 32, "sh1_step": 6, "sh_step": 12, "rotation_step": 8},
    {"position_ratio": 1 / 16, "sh1_step": 8, "sh_step": 16, "rotation_step": 8},
    {"position_ratio": 1 / 16, "sh1_step": 12, "sh_step": 20, "rotation_step": 16},
    {"position_ratio": 1 / 8, "sh1_step": 16, "sh_step": 24, "rotation_step": 16},
    {"position_ratio": 1 / 8, "sh1_step": 16, "sh_step": 32, "rotation_step": 32},
    {"position_ratio": 1 / 4, "sh1_step": 24, "sh_step": 48, "rotation_step": 32},
    {"position_ratio": 1 / 4, "sh1_step": 32, "sh_step": 64, "rotation_step": 64},
]

#: ``--quality`` presets; "small" is a rate target (`PRESET_TARGET`)
PRESETS: dict[str, dict] = {"small": {}, "default": {}, "high": dict(LEVELS[2])}
#: "small" as for the SOG profiles: the smallest file whose tuning views reach 40 dB at the 10th percentile and
#: 35 dB at the worst view, plus the guard for unseen views (`sog.metrics.SMALL_TARGET`)
PRESET_TARGET: dict[str, RateTarget] = {"small": SMALL_TARGET}


class SpzProfile(Profile):
    """`SpzSettings` behind the `Profile` surface `RateSearch` and `Profile.options` use (one layer only)."""

    name = "spz"
    summary = "Niantic SPZ (the SPZ writer's settings; not a SOG profile)"
    presets = PRESETS
    preset_target = PRESET_TARGET
    ladder = LEVELS

    @property
    def Options(self):  # noqa: N802 (the Profile contract's name)
        from ..io.spz_writer import SpzSettings
        return SpzSettings

    def check(self, options) -> None:
        options.check()

    def source_options(self, source: Splats) -> dict:
        """The position lattice stays relative to the source's sizes (`SpzSettings.sizes`): merging removes the
        small Gaussians first, so the reduced scene's own sizes would coarsen the lattice of the few small ones
        left (docs/formats.md has the case that showed it)."""
        from ..io.spz_writer import size_percentiles
        return {"sizes": size_percentiles(source.scales.detach().cpu().numpy())}

    def encode(self, layers: list[Layer], options, progress=None, palette=None) -> tuple[dict, dict[str, bytes]]:
        """``({"settings": ...}, {"scene.spz": bytes})`` for the one layer's Gaussians in their order."""
        from ..io.spz_writer import encode_spz

        if len(layers) != 1:
            raise SogError("an SPZ file holds one list of Gaussians, not importance layers")
        data = encode_spz(layers[0].splats, options)
        if progress:
            progress(FILE)
        return {"settings": options.as_dict()}, {FILE: data}

    def claims(self, meta: dict) -> bool:
        return False  # never read as a SOG container

    def decode(self, meta: dict, read) -> Splats:
        from ..io.spz import decode_spz
        return decode_spz(read(FILE), FILE)

    def grids(self, meta: dict, read) -> list[tuple[int, int]]:
        return []


PROFILE = SpzProfile()

