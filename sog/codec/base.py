"""The contract every profile keeps: what the pipeline may ask of a profile, and nothing else.

A *profile* turns Gaussians that are already sorted onto grids into the files of a ``.sog`` (``meta.json`` plus
image planes) and back. `sog.pipeline` loads the scene, resolves the cameras, sorts, and writes the container; it
names no profile and holds no format knowledge. A profile is one module (or package) that defines a `Profile`
subclass and one line in `sog.codec.PROFILES`.

The pipeline calls, in this order:

1. `Profile.options` — the profile's option dataclass from a ``--quality`` preset, ``--psnr`` and the caller's
   overrides; bad values raise `SogError` here, before any slow work.
2. `Profile.wants_layers` — whether this scene is split into importance layers; only then does the pipeline
   resolve the importance cameras (`sog.render.views.importance_views`), measure each Gaussian's render
   sensitivity from them (`sog.render.importance.sensitivities`, per view) and call
3. `Profile.plan_layers` with those figures — ``[(index (n_k,) long, drops), ...]``: which Gaussians go to which
   layer (every Gaussian exactly once) and how much coarser each layer's attributes may be stored
   (`sog.codec.layers`). The pipeline sorts each layer onto the grid `Profile.layer_shape` gives it and hands
   the profile a list of `Layer` s.
4. `Profile.encode` — ``(meta, files)``. With a PSNR target the pipeline runs the rate search (`sog.rate`) over
   the profile's `Profile.ladder` instead, with the search cameras it resolved (`sog.render.views.search_cameras`):
   the search calls `Profile.fit_palette` once and `Profile.encode` and `Profile.decode` per probe; the profile
   never chooses cameras.

Reading: `sog.codec.decode_container` asks each profile `Profile.claims` about a ``meta.json`` and calls the
claiming profile's `Profile.decode`; `Profile.grids` gives ``sog info`` the grid of each layer.

A profile may not read files, render (the pipeline measures what it needs), or import the CLI or `sog.evaluate`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Callable

import torch

from ..errors import SogError
from ..metrics import RateTarget
from ..splats import Splats

#: ``read(filename) -> bytes``: how a decoder fetches a file named in ``meta.json``
Reader = Callable[[str], bytes]
#: ``progress(step_name)``, called after each plane or probe
Progress = Callable[[str], None] | None
#: ``[(index (n_k,) long, drops {attribute: steps}), ...]``: a layer plan (`Profile.plan_layers`)
LayerPlan = list[tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Layer:
    """One importance layer: Gaussians already in grid order on a ``width`` x ``height`` grid, each attribute
    stored ``drops[name]`` steps coarser than the options (`sog.codec.layers.layer_options`)."""

    splats: Splats
    width: int
    height: int
    drops: dict[str, float] = field(default_factory=dict)


class Profile(ABC):
    """One file layout. Subclasses set the class attributes and implement `encode`, `decode` and `grids`."""

    #: the name ``--profile`` and `CompressOptions.profile` use
    name: str = ""
    #: one line for ``--help`` and error messages
    summary: str = ""
    #: the option dataclass of `options` (its fields are the ``profile_options`` keys)
    Options: type = object
    #: ``--quality`` presets: name -> overrides of `Options` (a preset may also be a PSNR target: `preset_target`)
    presets: dict[str, dict] = {}
    #: presets that are a quality target: the smallest file whose tuning views reach this `RateTarget`
    preset_target: dict[str, RateTarget] = {}
    #: deflate the container's meta.json entry
    compress_meta: bool = False
    #: why this profile is no longer a write option of ``sog compress`` (empty: it is one); its files are still
    #: read (`decode`), and the encoder stays for its reader's tests and the benchmark that retired it
    retired: str = ""
    #: the rate search's ladder (the profile's ``LEVELS``): settings of `Options`, finest (largest file) first, one
    #: setting coarser per step; empty: ``--psnr`` does not apply
    ladder: list[dict] = []

    @property
    def searched(self) -> tuple[str, ...]:
        """The keys of `Options` that a PSNR search chooses itself (a preset does not fix them then)."""
        return tuple(self.ladder[0]) if self.ladder else ()

    # -- options ----------------------------------------------------------------------------------------------
    def options(self, quality: str | None, target: RateTarget | None, overrides: dict):
        """``(Options, fixed, target)``: the preset ``quality`` (its `searched` settings left to the search when
        there is a target) under ``overrides``, as the dataclass and as the dict of what was set (``fixed``: a PSNR
        search keeps those as they are); a preset in `preset_target` sets the target when none is given."""
        if target is None and quality in self.preset_target:
            target = self.preset_target[quality]
        if target is not None and not self.ladder:
            raise SogError(f"--psnr does not apply to the {self.name} profile")
        preset = {}
        if quality is not None:
            if quality not in self.presets:
                raise SogError(f"the {self.name} profile has no quality preset {quality!r}"
                               + (f" (choose from {', '.join(self.presets)})" if self.presets else ""))
            known = {f.name for f in fields(self.Options)}
            preset = {k: v for k, v in self.presets[quality].items() if k in known}
            if target is not None:
                preset = {k: v for k, v in preset.items() if k not in self.searched}
        merged = {**preset, **overrides}
        try:
            opts = self.Options(**merged)
        except TypeError as exc:
            raise SogError(f"{self.name} profile: {exc}") from None
        self.check(opts)
        return opts, merged, target

    def check(self, options) -> None:
        """Raise `SogError` for option values the encoder would refuse (before the slow work)."""

    # -- layers -----------------------------------------------------------------------------------------------
    def wants_layers(self, count: int, options) -> bool:
        """Whether a scene of ``count`` Gaussians is split into importance layers (then the pipeline resolves the
        importance cameras and calls `plan_layers`). Default: one grid."""
        return False

    def plan_layers(self, splats: Splats, sensitivity: dict[str, torch.Tensor], options) -> LayerPlan:
        """The layers of ``splats`` (see `LayerPlan`) from ``sensitivity`` (attribute -> (V, N): each Gaussian's
        render sensitivity in each importance view); only called when `wants_layers`."""
        raise NotImplementedError

    def layer_shape(self, layer_count: int, total: int) -> tuple[int, int]:
        """``(H, W)`` of the grid a layer of ``layer_count`` of the scene's ``total`` Gaussians is sorted onto (default:
        a grid of its own, `sog.grid.grid_shape`)."""
        from ..grid import grid_shape
        return grid_shape(layer_count)

    def max_layers(self) -> int | None:
        """How many layers a file of this profile can hold (None: any number)."""
        return 1

    def source_options(self, source: Splats) -> dict:
        """Options that a reduced scene's encoding takes from ``source``, the scene it came from, so that a choice
        made from the scene's own statistics does not drift with the reduction (default: none)."""
        return {}

    # -- encode / decode --------------------------------------------------------------------------------------
    def fit_palette(self, splats: Splats, options):
        """The SH palette `encode` would fit for ``splats`` (the layers' concatenation) under ``options``, for a caller
        that encodes the same scene many times (the rate search) to pass back to `encode`; None: none to reuse."""
        return None

    def quantiser(self, options):
        """``splats (N rows) -> Splats``: the values a one-grid file of this profile written with ``options`` decodes
        to, without the image codec, for the fine-tune's quantisation-aware steps (`sog.train.finetune`); None: this
        profile has none (the fine-tune then trains on the float values only)."""
        return None

    @abstractmethod
    def encode(self, layers: list[Layer], options, progress: Progress = None,
               palette=None) -> tuple[dict, dict[str, bytes]]:
        """``(meta, files)`` for ``layers`` (each in grid order): the meta.json object and file name -> bytes.
        ``palette``: what `fit_palette` returned for these layers and options (None: fit one)."""

    @abstractmethod
    def claims(self, meta: dict) -> bool:
        """Whether ``meta`` (a container's meta.json) is a file of this profile."""

    @abstractmethod
    def decode(self, meta: dict, read: Reader) -> Splats:
        """The scene a file of this profile holds, in file order (layer by layer)."""

    @abstractmethod
    def grids(self, meta: dict, read: Reader) -> list[tuple[int, int]]:
        """``[(H, W), ...]``: the grid of each layer of a file of this profile (``sog info``)."""
