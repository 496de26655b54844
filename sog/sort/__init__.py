"""Sorting Gaussians (or any feature vectors) onto a 2D grid so that neighbours are similar.

`sort_grid` is the one entry point; `SORTERS` is the registry it reads (the CLI's ``--sort`` choices too). A
sorter is a `Sorter`: its ``run`` function ``run(x (N, C), shape (H, W), config, *, seed, device, progress, init)
-> order (N,)`` returning the input indices for grid cells 0..N-1 in row-major order, the dataclass of its
options, and whether it learns on standardised features (`sort_grid` standardises them once, on the way in). A
new sorter is one module plus one entry in `SORTERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..device import resolve_device
from ..errors import SogError
from .config import ShuffleSoftSortConfig, config_from_options
from .features import standardise
from .identity import sort_none
from .morton import sort_morton
from .shuffle_softsort import sort_shuffle_softsort
from .sinkhorn import SinkhornConfig, sort_sinkhorn
from .softsort import SoftSortConfig, sort_softsort


@dataclass(frozen=True)
class Sorter:
    """One sorter of the registry."""

    name: str
    #: ``run(x (N, C), shape, config, *, seed, device (a torch.device), progress, init (N,) or None) -> (N,)``;
    #: ``init``, a warm-start order, is checked to be a permutation before (sorters without one ignore it)
    run: Callable[..., torch.Tensor]
    #: the dataclass of its options (None: it takes none); ``from_options``, where it has one, checks them further
    config: type | None = None
    #: ``run`` gets the features standardised (`features.standardise`), in float32; otherwise as they are
    standardised: bool = False
    #: ... in float64 on the CPU (on a GPU float32): ShuffleSoftSort's orders are then the same on any CPU
    float64_on_cpu: bool = False

    def features(self, x: torch.Tensor, device: torch.device) -> torch.Tensor:
        """What ``run`` learns on: ``x`` (N, C) standardised once here if it asks for that, else as given."""
        if not self.standardised:
            return x
        return standardise(x, device, torch.float64 if self.float64_on_cpu and device.type == "cpu" else torch.float32)

    def configure(self, options: dict) -> Any:
        """The sorter's config built from a user's ``options`` (its field names), checked once: a `SogError`
        for an unknown option or a bad value. None for a sorter without options."""
        if self.config is None:
            if options:
                raise SogError(f"the {self.name} sorter takes no options (got {', '.join(sorted(options))})")
            return None
        if hasattr(self.config, "from_options"):
            return self.config.from_options(options)
        return config_from_options(self.config, options, self.name)


#: name -> sorter, the choices of ``--sort``
SORTERS: dict[str, Sorter] = {s.name: s for s in (
    Sorter("none", sort_none),
    Sorter("morton", sort_morton),
    Sorter("shufflesoftsort", sort_shuffle_softsort, ShuffleSoftSortConfig, standardised=True, float64_on_cpu=True),
    Sorter("softsort", sort_softsort, SoftSortConfig, standardised=True),  # dense N x N baseline, small N only
    Sorter("sinkhorn", sort_sinkhorn, SinkhornConfig, standardised=True),  # N^2-parameter baseline, small N only
)}


def get_sorter(method: str) -> Sorter:
    try:
        return SORTERS[method]
    except KeyError:
        raise SogError(f"unknown sort method {method!r} (choose from {', '.join(SORTERS)})") from None


def sort_grid(x: torch.Tensor, shape: tuple[int, int], method: str = "shufflesoftsort", seed: int = 0,
              device: str | torch.device = "auto", *, progress: bool = False, init: torch.Tensor | None = None,
              config: Any = None, **options) -> torch.Tensor:
    """Arrange the rows of ``x`` (N, C) on an ``shape = (H, W)`` grid with ``H*W >= N``.

    The sorter's options are either ``options`` (field names of its config dataclass, checked here) or a
    ``config`` built already (`Sorter.configure`). ``init`` (N,) is a warm-start order for the sorters that
    take one (ShuffleSoftSort). Returns ``perm`` (H*W,) long: ``perm[r*W + c]`` is the input index at grid
    cell (r, c); the last ``H*W - N`` cells are empty and hold -1. Every input index appears exactly once
    (checked).
    """
    sorter = get_sorter(method)
    if config is not None and options:
        raise SogError("sort_grid takes a config or options, not both")
    cfg = config if config is not None else sorter.configure(options)
    n = x.shape[0]
    h, w = shape
    if h * w < n:
        raise SogError(f"grid {h}x{w} has fewer cells than the {n} items to sort")
    if n == 0:
        raise SogError("nothing to sort (zero items)")
    dev = resolve_device(device)
    if init is not None and (init.shape != (n,) or not torch.equal(torch.sort(init.cpu().long()).values,
                                                                  torch.arange(n))):
        raise SogError(f"init must be a permutation of 0..{n - 1}")
    order = sorter.run(sorter.features(x, dev), (h, w), cfg, seed=seed, device=dev, progress=progress, init=init).cpu().long()
    check_bijection(order, n)
    perm = torch.full((h * w,), -1, dtype=torch.long)
    perm[:n] = order
    return perm


def check_bijection(order: torch.Tensor, n: int) -> None:
    """Raise if ``order`` is not a permutation of 0..n-1 (a sorter bug; never silently lose data)."""
    if order.shape != (n,) or n == 0:
        raise RuntimeError(f"sorter returned shape {tuple(order.shape)}, expected ({n},)")
    counts = torch.bincount(order.clamp(0, n - 1), minlength=n)
    if int(order.min()) < 0 or int(order.max()) >= n or not bool((counts == 1).all()):
        raise RuntimeError("sorter returned an order that is not a permutation (a Gaussian would be lost)")
