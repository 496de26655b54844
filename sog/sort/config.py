"""The schedule of ShuffleSoftSort (`ShuffleSoftSortConfig`) and how a sorter's config is built from user options.

Every stage of the sorter (`sog.sort.shuffle_softsort`, `sog.sort.polish`, `sog.sort.groups`) reads its
parameters from one `ShuffleSoftSortConfig`; `ShuffleSoftSortConfig.from_options` builds it from the
options a user names (``sog.sort_grid(..., group=6)``, `sog.pipeline.CompressOptions`) and checks them once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..errors import SogError
from .starts import STARTS


def config_from_options(cls, options: dict, sorter: str):
    """``cls(**options)`` for a config dataclass ``cls`` of the sorter named ``sorter``, with the option names
    checked first: an unknown one is a `SogError` that lists the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SogError(f"unknown {sorter} option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**options)


@dataclass
class ShuffleSoftSortConfig:
    """Schedule of the sorter. Radii are in grid cells; tau is in units of the weight spacing (1)."""

    objective: str = "smooth"  #: "smooth" (any features; 2D-smooth grid) or "codec" (positions; the .sog's bytes), see `resolved`
    budget: int | None = None  #: work budget: runs (group updates of the whole grid) over all stages; None: each stage's caps
    group: int = 4  #: K, elements per SoftSort group
    steps: int = 2  #: gradient steps per run
    lr: float = 0.5  #: Adam learning rate of the weights
    tau_start: float = 1.0
    tau_end: float = 0.1
    p: int = 2  #: power of the SoftSort distance
    coarse: bool | None = None  #: run the blur-radius stages (default: with objective "smooth" only)
    radius_start: float | None = None  #: first blur radius; default max(H, W) / 2, or warm_radius with ``init``
    warm_radius: float = 8.0  #: first radius of a warm start: keep the given order's large-scale layout
    radius_end: float = 1.0
    radius_decay: float = 0.8  #: next radius = decay * radius
    window_factor: float = 1.5  #: group windows are about this many radii wide
    assign_runs: int = 0  #: >0: blur once per radius step and run this many runs against that fixed target (see `refine`)
    feature_groups: int = 0  #: every this many runs (0: never), draw the groups in feature space (`draw_feature_groups`)
    min_runs: int = 2  #: runs at each radius before a plateau may stop it
    max_runs: int = 45  #: runs at each radius at most
    improvement_break: float = 1e-4  #: stop a radius when a run lowers the cost by less than this fraction
    max_seconds: float | None = None  #: opt-in wall-clock cap (the order stays valid, but then depends on the machine)
    axis_start: bool = True  #: weights start at the 1D matching along each group's main axis (`order_slots`)
    blur_passes: int = 1  #: box blurs that make the target (more tend to a Gaussian)
    include_self: bool = True  #: the target averages the cell itself too (measured better)
    start: str | None = None  #: first order without ``init``: a key of `STARTS` (default: "pca" for "smooth", "hilbert" for "codec")
    polish_runs: int = 600  #: runs of the final stage on the exact 4-neighbour loss at most (0: none)
    polish_vertical: float | None = None  #: weight of the vertical neighbours in the polish loss (horizontal: 1); default 1 "smooth", 0 "codec"
    polish_bits: int | None = None  #: >0: polish on the positions (columns 0-2) cut to 2^bits cells per axis; default 0 "smooth", 8 "codec"
    polish_loss: str | None = None  #: "squared" (default "smooth") or "log": sum of log2(1 + |difference|) per channel (default "codec")
    polish_group: int = 6  #: K of the polish stage
    polish_window: int = 8  #: its group windows, in cells
    polish_break: float = 1e-5  #: stop polishing when two runs lower the neighbour loss by less than this fraction
    restarts: int = 0  #: warm restarts after the schedule: redo it from ``restart_radius``, keep what `local_dpq_gain` prefers
    restart_radius: float = 4.0  #: first radius of a warm restart
    rank_polish_runs: int = 0  #: >0: a last stage of at most this many runs on the ranked neighbour loss (`rank_polish`)
    rank_polish_seconds: float | None = None  #: with ``max_seconds``: the part of it kept for that stage
    rank_rings: int = 4  #: distance rings that loss looks at (4: the 20 nearest cells)
    rank_group: int = 4  #: K of that stage
    rank_window: int = 3  #: its group windows, in cells

    @classmethod
    def from_options(cls, options: dict) -> "ShuffleSoftSortConfig":
        """The resolved config (`resolved`) of the user's ``options`` (field names of this class), checked:
        a `SogError` for an unknown name, objective or start, or a negative budget."""
        cfg = config_from_options(cls, options, "shufflesoftsort").resolved()
        if cfg.budget is not None and cfg.budget < 0:
            raise SogError(f"the sort budget must be 0 or more runs, not {cfg.budget}")
        if cfg.start not in STARTS:
            raise SogError(f"unknown shufflesoftsort start {cfg.start!r} (choose from {', '.join(STARTS)})")
        return cfg

    def resolved(self) -> "ShuffleSoftSortConfig":
        """The defaults left open (None) filled in by ``objective``.

        ``"smooth"``: a recursive PCA bisection, the coarse-to-fine blur radii, then the polish on
        the 4-neighbour loss of the features: a grid smooth in both directions (training, any
        features). ``"codec"`` (what `sog compress` uses; features = positions first): start from the
        3D Hilbert order folded row-major into the grid and polish on the left-right "log" loss
        (`log_cost`) of the positions cut to the 256 cells per axis of the .sog's high position byte. The native
        codec's bytes follow that plane (a 2D-smooth layout of the positions makes it larger: plant,
        scripts/bench_speed.py), and the coarse radii only undo the curve's runs.
        """
        if self.objective not in ("smooth", "codec"):
            raise SogError(f"unknown shufflesoftsort objective {self.objective!r} (smooth or codec)")
        codec = self.objective == "codec"
        return replace(
            self,
            start=self.start if self.start is not None else ("hilbert" if codec else "pca"),
            coarse=self.coarse if self.coarse is not None else not codec,
            polish_vertical=self.polish_vertical if self.polish_vertical is not None else (0.0 if codec else 1.0),
            polish_bits=self.polish_bits if self.polish_bits is not None else (8 if codec else 0),
            polish_loss=self.polish_loss if self.polish_loss is not None else ("log" if codec else "squared"))
