"""`SelfOrganizingGrid`: sort and smooth the Gaussians while a scene trains (the SOG training recipe).

Use in a gsplat-style loop (``params`` a ``torch.nn.ParameterDict`` with means, scales, quats,
opacities, sh0, shN; ``optimizers`` a dict of optimizers keyed by the same names)::

    sog_grid = SelfOrganizingGrid()
    for step in range(steps):
        loss = photometric_loss(...) + sog_grid.smoothness_loss(params)
        loss.backward(); [o.step() for o in optimizers.values()]; [o.zero_grad() for o in optimizers.values()]
        strategy.step_post_backward(...)            # densify / prune: N may change
        if sog_grid.should_sort(step):
            sog_grid.sort_(params, optimizers, strategy.state)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..grid import grid_shape
from ..sort import sort_grid
from ..sort.features import splat_features
from ..splats import Splats
from .permute import permute_params_
from .smoothness import smoothness_loss as _smoothness_loss


@dataclass
class SelfOrganizingGrid:
    """Configuration and entry points of the in-training sort + smoothness plugin.

    sort_every: re-sort every this many steps (`should_sort`); sort_from/sort_until bound the steps.
    method: a `sog.sort.SORTERS` name, or "auto" (= ShuffleSoftSort); ``init`` (the current order) is
        passed as a warm start, so a re-sort refines the current layout at fine radii only.
    feature_weights: per-attribute weights of the sort features (see `sog.sort.features`).
    smooth_weight: overall factor of `smoothness_loss` (0.005: chosen on the tiny CPU experiment against an
        L1 photometric loss; not tuned on full-size training); weights: per-attribute factors;
    sigma: blur radius in texels; delta: Huber threshold (on standardised values).
    """

    sort_every: int = 1000
    sort_from: int = 0
    sort_until: int | None = None
    method: str = "auto"
    feature_weights: dict[str, float] = field(default_factory=dict)
    sort_options: dict = field(default_factory=dict)
    smooth_weight: float = 0.005
    weights: dict[str, float] = field(default_factory=dict)
    sigma: float = 1.0
    delta: float = 1.0
    seed: int = 0
    device: str = "auto"
    progress: bool = False

    def should_sort(self, step: int) -> bool:
        """True on the steps where the loop should call `sort_` (``step`` counted from 0)."""
        if step < self.sort_from or (self.sort_until is not None and step > self.sort_until):
            return False
        return (step - self.sort_from) % self.sort_every == 0

    @property
    def resolved_method(self) -> str:
        """The sorter `sort_` uses: ``method``, with "auto" resolved as documented above."""
        if self.method != "auto":
            return self.method
        return "shufflesoftsort"

    def features(self, params) -> torch.Tensor:
        """(N, C) sort features of the current parameters (detached)."""
        n = int(params["means"].shape[0])
        get = lambda name, shape: params[name].detach() if name in params else torch.zeros(shape)  # noqa: E731
        sh0 = get("sh0", (n, 1, 3)).reshape(n, 1, 3)
        shn = get("shN", (n, 0, 3))
        shn = shn.reshape(n, -1, 3)
        splats = Splats(means=params["means"].detach(), scales=get("scales", (n, 3)), quats=get("quats", (n, 4)),
                        opacities=get("opacities", (n,)).reshape(n), sh0=sh0, shN=shn)
        return splat_features(splats, self.feature_weights)

    @torch.no_grad()
    def sort_(self, params: torch.nn.ParameterDict, optimizers=None, strategy_state: dict | None = None,
              step: int = 0) -> torch.Tensor:
        """Re-sort the Gaussians onto the grid of the current N, in place; returns ``order`` (N,) long.

        Afterwards ``params[k][i]`` is the old ``params[k][order[i]]``; the same holds for every
        optimizer state tensor with N rows and every strategy-state tensor with N rows. The sort is
        warm-started from the current order, so repeated sorts refine rather than restart.
        """
        n = int(params["means"].shape[0])
        shape = grid_shape(n)
        x = self.features(params)
        perm = sort_grid(x, shape, self.resolved_method, seed=self.seed + step, device=self.device,
                         progress=self.progress, init=torch.arange(n), **self.sort_options)
        order = perm[:n]
        permute_params_(params, optimizers, order, strategy_state)
        return order

    def smoothness_loss(self, params) -> torch.Tensor:
        """``smooth_weight`` × the weighted Huber-vs-blur grid loss of `sog.train.smoothness`; scalar."""
        if self.smooth_weight == 0:
            return next(iter(params.values())).new_zeros(())
        return self.smooth_weight * _smoothness_loss(params, self.weights, self.sigma, self.delta)
