"""Re-fit a reduced scene: a few distillation steps that let the survivors of `sog.reduce` carry what was dropped.

After `sog.reduce.reduce` removes Gaussians, the ones kept still have the colour, opacity and size they had next to
their removed neighbours. `refit` trains only those attributes (sh0 colour, logit opacity, log-scales; optionally
the means) for a few steps of `sog.train.finetune` with the ORIGINAL scene as teacher: its targets are renders of
the unreduced scene from the caller's *tuning* cameras (`sog.render.views.tuning_cameras`; never the judging
ones), rendered by the differentiable tiled renderer. No neighbour loss and no re-sort (the reduced scene is not
sorted yet), so the rows stay in the reduced scene's order. The loss and the step are `finetune`'s, not a copy.

    from sog.train.refit import RefitConfig, refit
    fitted = refit(reduction.splats, original, tuning_cams, RefitConfig(steps=48), seed=0)
    fitted.splats       # (M,) Gaussians, row i = reduced row i; quats and shN unchanged
    fitted.photometric  # (steps,) float64, the loss of each step

    scene, report = refit_checked(reduction.splats, original, tuning_cams, other_tuning_cams)
    report              # {"steps", "kept": the re-fit was kept, "before"/"after": ViewStats on the other views}

`refit_checked` keeps the re-fit only where other tuning views (ones it did not train on) say it helps: a scene
that lost little in the reduction renders at 55-60 dB, where a few steps on 12 views cost more than they win.

Deterministic for a seed on a fixed thread count, on every CPU (as `finetune`).

This module lives in `sog.train` (not `sog.reduce`): it drives the fine-tune, which sits above the reduction in
the package's room order.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SogError
from ..metrics import ViewStats, view_psnrs
from ..reduce import REDUCE_SIZE, REDUCE_VIEWS
from ..render import Camera, RasterConfig, render
from ..render.views import tuning_cameras
from ..splats import Splats
from ..stable import snap
from .finetune import FinetuneConfig, FinetuneResult, finetune

#: `RefitConfig`'s steps, and `sog compress --reduce F --refit` without a step count
REFIT_STEPS = 48


@dataclass
class RefitConfig:
    """``steps`` of Adam on sh0, opacity and scales (and the means with ``means``); their learning rates are the
    fine-tune's (`FinetuneConfig`) times ``lr_scale`` (the fine-tune's own scale is 0.1, for a converged scene;
    a reduced one has further to go). Steps and scale were chosen on held-out tuning views of plant, tarot and
    kacytran reduced by the default (pairwise) reduction (docs/reduce.md); ``ssim_weight`` as in the fine-tune."""

    steps: int = REFIT_STEPS
    lr_scale: float = 0.3
    means: bool = False
    ssim_weight: float = 0.2
    raster: RasterConfig | None = None

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise SogError(f"the re-fit needs 0 or more steps, not {self.steps}")
        if not self.lr_scale > 0:  # also catches NaN
            raise SogError(f"the re-fit's lr_scale must be positive, not {self.lr_scale}")

    def finetune_config(self) -> FinetuneConfig:
        """The `FinetuneConfig` that trains only the re-fitted attributes: the others' learning rates 0 (Adam then
        leaves them exactly as they are), no neighbour loss, no re-sort."""
        base = FinetuneConfig()
        extra = {} if self.raster is None else {"raster": self.raster}
        return FinetuneConfig(steps=self.steps, ssim_weight=self.ssim_weight, smooth_weight=0.0, sort_every=0,
                              lr_scale=self.lr_scale, lr_quats=0.0, lr_shN=0.0,
                              lr_means=base.lr_means if self.means else 0.0, **extra)


def refit_views(splats: Splats, source_path, checking: list[Camera], views: int = REDUCE_VIEWS,
                size: int = REDUCE_SIZE) -> list[Camera]:
    """The tuning views a re-fit trains on: ``views`` of them (at ``size``) that are none of ``checking`` (the
    cameras that judge whether it helps, by name), so that what judges it never trained it; [] when the tuning
    views run out (a camera file with few of them)."""
    taken = {cam.name for cam in checking}
    cams = tuning_cameras(splats, source_path, views=len(checking) + views, size=size)
    return [cam for cam in cams if cam.name not in taken][:views]


def refit_checked(reduced: Splats, original: Splats, cameras: list[Camera], check: list[Camera],
                  config: RefitConfig | None = None, seed: int = 0, progress: bool = False) -> tuple[Splats, dict]:
    """`refit` of ``reduced`` on ``cameras``, kept if on the ``check`` cameras (tuning cameras it did not train
    on) its 10th-percentile PSNR against ``original`` is higher than ``reduced``'s and its mean and worst view no lower;
    else ``reduced`` as it was. Returns (scene, {"steps", "kept", "before", "after"}), the last two `ViewStats` dicts."""
    config = config or RefitConfig()
    if not check:
        raise SogError("refit_checked needs cameras to check the re-fit on")
    if config.steps == 0:
        return reduced, {"steps": 0, "kept": False, "before": None, "after": None}
    reference = render(original, check, backend="cpu", device="cpu", config=config.raster)
    fitted = refit(reduced, original, cameras, config, seed=seed, progress=progress).splats
    before, after = (ViewStats.of(view_psnrs(render(s, check, backend="cpu", device="cpu", config=config.raster),
                                             reference)) for s in (reduced, fitted))
    # a discrete choice steered by renders (torch's sigmoid rounds by CPU): compared snapped, as `sog.stable` says
    b, a = (snap([s.p10, s.worst, s.mean]) for s in (before, after))
    kept = bool(a[0] > b[0] and a[1] >= b[1] and a[2] >= b[2])
    return (fitted if kept else reduced), {"steps": config.steps, "kept": kept, "before": before.as_dict(),
                                           "after": after.as_dict()}


def refit(reduced: Splats, original: Splats, cameras: list[Camera], config: RefitConfig | None = None,
          seed: int = 0, progress: bool = False) -> FinetuneResult:
    """Re-fit ``reduced`` (M Gaussians) towards renders of ``original`` (N >= M, the scene before the reduction)
    from ``cameras`` (tuning cameras); see the module docstring. Returns `finetune`'s result (``splats`` in
    ``reduced``'s row order; ``photometric`` (steps,) the loss of each step). 0 steps: ``reduced`` unchanged."""
    config = config or RefitConfig()
    return finetune(reduced, cameras, config.finetune_config(), seed=seed, progress=progress, teacher=original)
