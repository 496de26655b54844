"""Distillation fine-tune: train a sorted scene towards renders of the original, with the neighbour loss on its grid.

No photos are needed: the targets are renders of the teacher (by default the scene itself) from the *tuning*
cameras the caller passes (`sog.render.views.tuning_cameras`; never the judging ones). Each step renders one
view with the differentiable tiled CPU renderer (`sog.render.render_tensors(..., backend="tiles")`) and
minimises

    (1 - ssim_weight) · L1 + ssim_weight · (1 - SSIM)  +  λ · neighbour loss on the grid

(3DGS's 0.8 / 0.2 mix; the neighbour loss is `SelfOrganizingGrid.smoothness_loss` of `sog.train.plugin`, λ its
``smooth_weight``). In the last ``qat_steps`` steps, given a ``quantise`` (a profile's `Profile.quantiser`: the
values its file would decode to), the view is rendered from the quantised values with straight-through gradients
(``x + (Q(x) - x).detach()``): the loss sees the encoder's rounding, and the float values learn to land where
rounding them renders best. The rotations are made canonical first (`sog.codec.rotation.canonical_rotations`, the
same covariances), as the encoder stores them, so that a decoded rotation is the same parametrisation as the
trained one; a Gaussian whose canonical form changed during training is rendered unquantised in that step.
Every ``sort_every`` steps the plugin re-sorts the Gaussians onto the grid with its own hook
(`SelfOrganizingGrid.should_sort` / `sort_`), which permutes the parameters and Adam's state together: the
fine-tune is the plugin in use. Each step is `sog.train.loop.training_step`, the one training code shares.

    from sog.train.finetune import FinetuneConfig, finetune
    result = finetune(splats_in_grid_order, tuning_cams, FinetuneConfig(steps=300), seed=0)
    result.splats           # the fine-tuned scene, row i = input Gaussian i (a bijection: none lost)
    result.order            # (N,) long: the input index at each grid cell after the last re-sort

Deterministic for a seed on a fixed thread count, on every CPU: the views' sequence is drawn from ``seed``; the
renderer's gradients are the same bytes on any thread count; the step uses `sog.stable`'s ops (sigmoid,
normalisation, SH sums, SSIM's blur; ``RasterConfig.portable``) and `sog.train.adam.PortableAdam`, whose rounding
does not depend on the CPU's vector instructions (torch's sigmoid, small reductions, oneDNN's conv2d and Adam's
fused kernels do: a loop grows one last-bit difference into another scene). Ctrl-C (KeyboardInterrupt) propagates from any step: nothing
is returned, so nothing gets written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..codec.rotation import canonical_splats
from ..errors import SogError
from ..render import Camera, RasterConfig, render_tensors
from ..render.cameras import robust_bounds
from ..splats import FIELDS, Splats
from ..stable import sigmoid
from .adam import PortableAdam
from .loop import photometric_loss, training_step
from .plugin import SelfOrganizingGrid


#: the tuning views the pipeline's fine-tune trains on (`sog.render.views.tuning_cameras`), and their size
FINETUNE_VIEWS, FINETUNE_SIZE = 128, 256
#: `sog compress --finetune` without a step count
FINETUNE_STEPS = 300


@dataclass
class FinetuneConfig:
    """Steps, loss weights, re-sorting and Adam learning rates of `finetune`.

    The learning rates are 3DGS's end-of-training ones (positions: times the scene's robust extent) times
    ``lr_scale`` (0.1: chosen on held-out tuning views of plant, see docs/finetune.md), as befits a scene that
    has converged already. ``smooth_weight`` (λ) and ``smooth_weights`` (per attribute) go to the
    plugin's neighbour loss; ``sort`` / ``sort_options`` / ``sort_weights`` to its re-sort (``sort_every`` 0:
    never re-sort).
    """

    steps: int = FINETUNE_STEPS
    ssim_weight: float = 0.2
    smooth_weight: float = 0.005
    smooth_weights: dict[str, float] = field(default_factory=dict)
    sort_every: int = 100
    sort: str = "auto"
    sort_options: dict = field(default_factory=dict)
    sort_weights: dict[str, float] = field(default_factory=dict)
    #: every learning rate below times this (see the class docstring)
    lr_scale: float = 0.1
    lr_means: float = 1.6e-6
    lr_quats: float = 1e-3
    lr_scales: float = 5e-3
    lr_opacities: float = 2.5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 1.25e-4
    raster: RasterConfig = field(default_factory=RasterConfig)
    #: the last steps that train through ``quantise`` (`finetune`'s argument; without one they are plain steps)
    qat_steps: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise SogError(f"the fine-tune needs 0 or more steps, not {self.steps}")
        if not 0 <= self.qat_steps <= self.steps:
            raise SogError(f"the quantisation-aware steps must be 0 to the {self.steps} steps, not {self.qat_steps}")
        if self.sort_every < 0:
            raise SogError(f"sort_every must be 0 (never) or more steps, not {self.sort_every}")
        if not 0 <= self.ssim_weight <= 1:
            raise SogError(f"ssim_weight must be in [0, 1], not {self.ssim_weight}")

    def plugin(self, steps: int, seed: int) -> SelfOrganizingGrid:
        """The `SelfOrganizingGrid` this fine-tune drives: re-sorts at steps K, 2K, ... below ``steps``."""
        every = self.sort_every if self.sort_every > 0 else steps + 1
        return SelfOrganizingGrid(sort_every=every, sort_from=every, sort_until=steps - 1, method=self.sort,
                                  feature_weights=dict(self.sort_weights), sort_options=dict(self.sort_options),
                                  smooth_weight=self.smooth_weight, weights=dict(self.smooth_weights), seed=seed,
                                  device="cpu")


@dataclass
class FinetuneResult:
    """`finetune`'s output: ``splats`` in the input's row order; ``order`` (N,) the input index at each grid
    cell after the last re-sort (``splats.permute(order)`` is the scene in grid order); per step the photometric
    and the (weighted) neighbour loss, (steps,) float64 each; the number of re-sorts."""

    splats: Splats
    order: torch.Tensor
    photometric: torch.Tensor
    neighbour: torch.Tensor
    sorts: int


def render_params(params, camera: Camera, raster: RasterConfig) -> torch.Tensor:
    """Render raw parameters (means, quats, log-scales, logit opacities, sh0, shN) with the tiled differentiable
    renderer -> RGB (H, W, 3)."""
    rgb, _ = render_tensors(params["means"], params["quats"], params["scales"].exp(),
                            sigmoid(params["opacities"]), params["sh0"], params["shN"], camera, "tiles",
                            dataclasses.replace(raster, portable=True))
    return rgb


def distillation_loss(splats: Splats, targets: torch.Tensor, cameras: list[Camera],
                      config: FinetuneConfig = FinetuneConfig()) -> tuple[float, float]:
    """The fine-tune's two losses for ``splats`` in grid order against ``targets`` (V, H, W, 3) rendered from
    ``cameras``: (mean photometric loss over the views, weighted neighbour loss); no gradients."""
    params = {k: v.float() for k, v in splats.tensors().items()}
    with torch.no_grad():
        photo = sum(float(photometric_loss(render_params(params, cam, config.raster), target, config.ssim_weight))
                    for cam, target in zip(cameras, targets)) / len(cameras)
        smooth = float(config.plugin(1, 0).smoothness_loss(params))
    return photo, smooth


def finetune(splats: Splats, cameras: list[Camera], config: FinetuneConfig | None = None, seed: int = 0,
             progress: bool = False, teacher: Splats | None = None, quantise=None) -> FinetuneResult:
    """Fine-tune ``splats`` (in grid order: row i at texel i of `sog.grid.grid_shape`) towards renders of
    ``teacher`` (default: ``splats`` itself) from ``cameras`` (tuning cameras; each step renders its view's
    target, so many views cost no memory); see the module docstring. ``quantise`` (Splats -> Splats, row for
    row): what the last ``config.qat_steps`` train through. CPU only. Returns a `FinetuneResult` (the scene in the
    input's row order; its rotations canonical when it ran quantisation-aware steps)."""
    config = config or FinetuneConfig()
    if not cameras:
        raise SogError("the fine-tune needs at least one camera")
    n = len(splats)
    teacher = splats if teacher is None else teacher
    qat_from = config.steps - config.qat_steps if quantise is not None and config.qat_steps else config.steps
    if qat_from < config.steps:
        splats = canonical_splats(splats)  # before the first step: Adam has no state to mend
    lo, hi = robust_bounds(splats.means)
    extent = float((hi - lo).norm())
    lrs = {"means": config.lr_means * extent, "quats": config.lr_quats, "scales": config.lr_scales,
           "opacities": config.lr_opacities, "sh0": config.lr_sh0, "shN": config.lr_shN}
    lrs = {name: lr * config.lr_scale for name, lr in lrs.items()}
    params = torch.nn.ParameterDict({name: torch.nn.Parameter(getattr(splats, name).detach().float().clone())
                                     for name in FIELDS})
    # one Adam per attribute (gsplat's layout): the plugin's `sort_` swaps each parameter and permutes its state
    optimizers = {name: PortableAdam([params[name]], lr=lrs[name], eps=1e-15) for name in FIELDS}
    teacher_params = {name: getattr(teacher, name).detach().float() for name in FIELDS}
    grid = config.plugin(config.steps, seed)
    gen = torch.Generator().manual_seed(seed)
    order = torch.arange(n)
    photometric = torch.zeros(config.steps, dtype=torch.float64)
    neighbour = torch.zeros(config.steps, dtype=torch.float64)
    sorts = 0
    views: list[int] = []
    with tqdm(range(config.steps), desc="fine-tune", unit="step", disable=not progress, leave=False) as bar:
        for step in bar:
            if grid.should_sort(step):
                order = order[grid.sort_(params, optimizers, step=step)]
                sorts += 1
            if not views:
                views = torch.randperm(len(cameras), generator=gen).tolist()
            v = views.pop()
            with torch.no_grad():
                target = render_params(teacher_params, cameras[v], config.raster)
            photo, smooth = training_step(params, optimizers, grid,
                                          lambda p: (render_params(p, cameras[v], config.raster), None), target,
                                          ssim_weight=config.ssim_weight,
                                          quantise=quantise if step >= qat_from else None)
            photometric[step], neighbour[step] = float(photo), float(smooth)
            bar.set_postfix(photo=f"{float(photometric[step]):.4f}", neighbour=f"{float(neighbour[step]):.4f}",
                            refresh=False)
    out = {}
    for name in FIELDS:
        value = params[name].detach()
        rows = torch.empty_like(value)
        rows[order] = value                         # grid row i is input row order[i]
        out[name] = rows.to(getattr(splats, name).dtype)
    return FinetuneResult(splats=Splats(**out, extras=dict(splats.extras)), order=order, photometric=photometric,
                          neighbour=neighbour, sorts=sorts)
