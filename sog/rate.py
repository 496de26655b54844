"""Rate control: the smallest file of a profile whose renders reach a `RateTarget` against the original's.

A target holds floors on the per-view PSNR statistics of the search cameras (`sog.metrics.ViewStats`: mean, 10th
percentile, worst view); a probe *passes* when it reaches every floor given, and its *margin* is the least amount
by which it clears them (`RateTarget.margin`; negative when it fails). Every stage below compares margins where a
mean-only search compared mean PSNRs (a target of the mean alone steps as it did). ``--psnr DB`` is
`RateTarget.for_psnr` (the mean DB, with floors on the 10th percentile and the worst view); ``--quality small`` is
the profile's `Profile.preset_target`.

Bytes are what the container holds (`sog.io.container_size`: ``meta.json``, the planes and the zip's headers), the
size that is written: a small scene's ``meta.json`` (its three 256-entry codebooks) is several per cent of it.

`RateSearch` searches any `sog.codec.base.Profile` that has a ladder (``Profile.ladder``, the profile's
``LEVELS``: settings from finest to coarsest, one setting coarser per step, the bytes falling along the list). The
pipeline runs it with the cameras it resolved (`sog.render.views.search_cameras`); each probe encodes, decodes
and renders from them.

1. A binary search over the ladder. PSNR is assumed to fall along it; a scene that breaks that can only make the
   search stop early (a larger file that still reaches the target), never return a level below the target that
   it measured.
2. From the level found, each setting half a step coarser on its own (`coarser`: half a bit, or the levels over
   sqrt 2); the search moves on from the one that still reaches the target and saves the most bytes per dB given
   up (which leaves PSNR to spend on the next round), for ``refine_rounds`` rounds: the ladder's order suits some
   scenes, and others lose PSNR per byte in another order.
3. With importance layers, ``layer_rounds`` rounds step one attribute of one layer at a time (`layer_step`, stored
   as ``Options.layer_steps``): the layers' drops come from a small-error estimate, and the measured bytes per dB
   of a half step differ between layers. When no such step reaches the target on its own, it trades: a step that
   saves many bytes per dB, paid for by a finer step where a dB saves few.
4. One round of quarter steps spends what PSNR is left over the target.

The smallest file met that reaches the target is written. Measured figures: docs/profiles.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from . import metrics
from .codec.base import Layer, Profile
from .codec.layers import LAYER_STEPPED, layer_drops, layer_options
from .errors import SogError
from .io import container_size
from .metrics import RateTarget, ViewStats
from .render import render
from .splats import Splats

#: the settings the second stage steps, one at a time (`coarser`); none goes past the ladder's coarsest level
STEPPED = ("means_bits", "quat_bits", "scale_levels", "color_levels", "sh_levels")

#: the second stage's step sizes, in turn, each with its most rounds (None: ``refine_rounds``): half steps, then one
#: round of quarter steps to spend what PSNR is left
STEP_SIZES = ((0.5, None), (0.25, 1))


@dataclass
class RateResult:
    """What a `RateSearch` returns."""

    meta: dict
    files: dict[str, bytes]
    psnr: float                  #: measured mean PSNR of the chosen settings (dB, on the search cameras)
    level: int                   #: index into the profile's ladder of the level the refinement started from
    reached: bool                #: False when even the finest level stays below the target
    #: every probe: level (None past the list), settings, bytes, psnr (mean), p10, worst, passed
    tried: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)     #: the chosen settings
    stats: ViewStats | None = None  #: mean, p10 and worst view of the chosen settings (dB, on the search cameras)
    target: RateTarget | None = None  #: what the search held the file to


def layer_step(settings: dict, layers: int, k: int, name: str, size: float) -> dict:
    """``settings`` with attribute ``name`` (one of `sog.codec.layers.LAYER_STEPPED`) of layer ``k`` of ``layers``
    stored ``size`` steps coarser (negative: finer) than its drop says, through ``layer_steps``."""
    steps = [list(row) for row in settings.get("layer_steps") or [[0.0] * len(LAYER_STEPPED)] * layers]
    steps[k][LAYER_STEPPED.index(name)] += size
    return {**settings, "layer_steps": tuple(tuple(row) for row in steps)}


def coarser(name: str, value: float, size: float) -> float:
    """``value`` of setting ``name`` one step of ``size`` bits coarser: ``size`` bits less for a bit depth, the
    levels over 2^size (rounded) for a level count. The ladder's steps are whole ones; the second stage takes
    half and quarter steps, which land closer to the target."""
    return value - size if name.endswith("_bits") else int(round(value / 2 ** size))


def key(settings: dict) -> tuple:
    """A hashable form of ``settings`` (the probes are remembered by it)."""
    return tuple(sorted(settings.items()))


class RateSearch:
    """The smallest file of ``profile`` whose renders from ``cameras`` reach ``target`` (`run`): a `RateTarget`, or
    a number of dB, which means `RateTarget.for_psnr` (``--psnr``).

    ``layers``: the scene's `Layer` s in grid order; each keeps its drops relative to the level chosen.
    ``ladder``: the profile's levels, finest first (``profile.ladder``). ``options``: profile options the caller
    fixed; they win over a level's settings and are never stepped. ``progress(name)`` is called after each probe.
    Up to ``refine_rounds`` rounds of single-setting half steps follow the ladder, then (with several layers) up to
    ``layer_rounds`` rounds of one-layer steps and trades (at most ``trade_probes`` probed per round), then a round
    of quarter steps (`STEP_SIZES`; ``refine_rounds=0``: the ladder only).

    Probes encode at the requested image-codec effort (``probe_effort``: at most this one instead, the chosen
    settings then encoded once more at the requested effort, whose bytes differ from the probe's by up to about
    1 %), and the SH palette is fitted once (`Profile.fit_palette`): the file written is the chosen probe's, and
    the bytes the search chose on are its bytes. ``size(meta, files)`` counts a probe's bytes (default:
    `container_size` of a ``.sog`` zip, what `sog.io.write_container` writes); ``tried`` reports them."""

    def __init__(self, profile: Profile, ladder: list[dict], layers: list[Layer], target: RateTarget | float,
                 options: dict | None = None, cameras=None, device: str = "auto", progress=None, *,
                 refine_rounds: int = 4, probe_effort: int | None = None, layer_rounds: int = 4,
                 trade_probes: int = 3, reference: torch.Tensor | None = None,
                 size: Callable[[dict, dict], int] | None = None):
        if not ladder:
            raise SogError(f"--psnr does not apply to the {profile.name} profile")
        if not cameras:
            raise SogError("the rate search needs cameras to render its probes from")
        if not isinstance(target, RateTarget):
            target = RateTarget.for_psnr(float(target))
        self.profile, self.ladder, self.layers, self.target = profile, ladder, layers, target
        self.size = size or (lambda meta, files: container_size(meta, files, compress_meta=profile.compress_meta))
        self.options = dict(options or {})
        self.cameras, self.device, self.progress = list(cameras), device, progress
        self.refine_rounds, self.layer_rounds, self.trade_probes = refine_rounds, layer_rounds, trade_probes
        base = profile.Options(**self.options)
        self.probe_options = self.options if probe_effort is None else \
            {**self.options, "effort": min(base.effort, probe_effort)}
        splats = Splats.concat([layer.splats for layer in layers])
        self.palette = profile.fit_palette(splats, base)  # reused by every probe
        # what the probes are judged against: renders of the layers' scene, or ``reference`` (C, H, W, 3) given
        # (the scene before a fine-tune changed it)
        self.reference = render(splats, self.cameras, device=device) if reference is None else reference
        # settings (as `key`) -> level, settings, meta, files, bytes, psnr (mean), p10, worst, margin, passed
        self.probes: dict[tuple, dict] = {}

    def run(self) -> RateResult:
        """Search: the ladder, then the single-setting and per-layer steps (`refine`, `rebalance`)."""
        best, reached = self.ladder_level()
        chosen = self.ladder[best]
        for size, rounds in STEP_SIZES if reached else ():
            most = self.refine_rounds if rounds is None else min(rounds, self.refine_rounds)
            chosen = self.refine(chosen, size, most)
            if size == STEP_SIZES[0][0] and len(self.layers) > 1 and "layer_steps" not in self.options:
                chosen = self.rebalance(chosen, self.layer_rounds)  # after the half steps
        # the smallest file met on the way that reaches the target (the last step's, unless an earlier round's
        # larger step was smaller still)
        if reached:
            chosen = min((p["settings"] for p in self.probes.values() if p["passed"]),
                         key=lambda st: self.probes[key(st)]["bytes"])
        found = self.probes[key(chosen)]
        meta, files = found["meta"], found["files"]
        if self.probe_options != self.options:  # the same values at the requested effort
            meta, files = self.profile.encode(self.layers, self.profile.Options(**{**chosen, **self.options}),
                                              palette=self.palette)
        tried = [{k: p[k] for k in ("level", "settings", "bytes", "psnr", "p10", "worst", "passed")}
                 for p in self.probes.values()]
        return RateResult(meta=meta, files=files, psnr=found["psnr"], level=best, reached=reached,
                          tried=tried, settings=chosen, stats=found["stats"], target=self.target)

    # -- probes -----------------------------------------------------------------------------------------------
    def probe(self, settings: dict, level: int | None = None) -> float:
        """The margin over the target (dB, `RateTarget.margin`) of the file ``settings`` make (encoded, decoded and
        rendered once; remembered): it passes when the margin is 0 or more."""
        if key(settings) not in self.probes:
            profile = self.profile
            meta, files = profile.encode(self.layers, profile.Options(**{**settings, **self.probe_options}),
                                         palette=self.palette)
            test = render(profile.decode(meta, files.__getitem__), self.cameras, device=self.device)
            stats = ViewStats.of(metrics.view_psnrs(self.reference, test))
            margin = self.target.margin(stats)
            self.probes[key(settings)] = {"level": level, "settings": settings, "meta": meta, "files": files,
                                          "bytes": self.size(meta, files), "stats": stats, "psnr": stats.mean,
                                          "p10": stats.p10, "worst": stats.worst, "margin": margin,
                                          "passed": margin >= 0}
            if self.progress:
                self.progress(f"level {level}" if level is not None else "refine")
        return self.probes[key(settings)]["margin"]

    def passes(self, settings: dict) -> bool:
        """Whether the (probed) file of ``settings`` reaches the target."""
        return self.probes[key(settings)]["passed"]

    def saved_per_db(self, settings: dict, start: dict) -> float:
        """Bytes saved per dB of margin given up from ``start`` to ``settings`` (a free step: very many)."""
        p, here = self.probes[key(settings)], self.probes[key(start)]
        return (here["bytes"] - p["bytes"]) / max(here["margin"] - p["margin"], 1e-3)

    def stored(self, settings: dict) -> tuple:
        """What each layer is stored with under ``settings`` (two settings that store the same: one file)."""
        opts = self.profile.Options(**settings)
        return tuple(tuple(getattr(layer_options(opts, layer_drops(opts, i, layer)), name)
                           for name in ("means_bits", "quat_bits", "scale_levels", "color_levels"))
                     for i, layer in enumerate(self.layers))

    # -- stages -----------------------------------------------------------------------------------------------
    def ladder_level(self) -> tuple[int, bool]:
        """``(level, reached)``: the coarsest ladder level found to reach the target (binary search), and whether
        it does (level 0 is probed only when no other level does)."""
        # invariant: level `lo` reaches the target; levels past `hi` are not known to
        lo, hi = 0, len(self.ladder) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.probe(self.ladder[mid], mid) >= 0:
                lo = mid
            else:
                hi = mid - 1
        return lo, lo > 0 or self.probe(self.ladder[0], 0) >= 0

    def refine(self, chosen: dict, size: float, rounds: int) -> dict:
        """Up to ``rounds`` rounds of single-setting steps of ``size``; a setting whose step failed once is not
        tried again at that size (the PSNR only falls as others get coarser)."""
        open_steps = [name for name in STEPPED
                      if name not in self.options and (name != "sh_levels" or self.palette is not None)]
        for _ in range(rounds):
            passing = []
            for name in list(open_steps):
                floor = self.ladder[-1][name]
                if chosen[name] <= floor:
                    open_steps.remove(name)
                    continue
                settings = {**chosen, name: max(floor, coarser(name, chosen[name], size))}
                if settings[name] == chosen[name] or self.probe(settings) < 0:
                    open_steps.remove(name)  # too small a step to change anything, or it fails
                else:
                    passing.append(settings)
            if not passing:
                break
            chosen = max(passing, key=lambda st: self.saved_per_db(st, chosen))
        return chosen

    def rebalance(self, chosen: dict, rounds: int) -> dict:
        """Up to ``rounds`` rounds of half steps of one attribute in one layer (`layer_step`): the step that
        reaches the target and saves the most bytes per dB, or else the first of the ``trade_probes`` most
        promising trades (`trade`) that reaches it with fewer bytes."""
        count = len(self.layers)
        for _ in range(rounds):
            now = self.stored(chosen)
            moves = []  # (settings, layer, attribute) of each coarser step that changes the file
            for k in range(count):
                for name in LAYER_STEPPED:
                    settings = layer_step(chosen, count, k, name, 0.5)
                    if self.stored(settings) != now:
                        self.probe(settings)
                        moves.append((settings, k, name))
            if not moves:
                break
            passing = [st for st, _, _ in moves if self.passes(st)]
            if passing:
                chosen = max(passing, key=lambda st: self.saved_per_db(st, chosen))
                continue
            traded = self.trade(chosen, now, moves)
            if traded is None:
                break
            chosen = traded
        return chosen

    def trade(self, chosen: dict, now: tuple, moves: list) -> dict | None:
        """When no single layer step of ``moves`` reaches the target: a coarser step of one attribute (a), paid for
        by a finer step of another (b), which is expected to win back the PSNR and cost the bytes that b's coarser
        step lost and saved; the first of the ``trade_probes`` most promising that reaches the target with fewer
        bytes than ``chosen`` (stored as ``now``), or None."""
        count = len(self.layers)
        here = self.probes[key(chosen)]
        refinable = [m for m in moves if self.stored(layer_step(chosen, count, *m[1:], -0.5)) != now]
        trades = []  # (expected change in bytes, settings)
        for a, *knob_a in moves:
            for b, *knob_b in refinable:
                pa, pb = self.probes[key(a)], self.probes[key(b)]
                expected_margin = here["margin"] + pa["margin"] - pb["margin"]
                if knob_a != knob_b and expected_margin >= 0 and pa["bytes"] < pb["bytes"]:
                    trades.append((pa["bytes"] - pb["bytes"], layer_step(a, count, *knob_b, -0.5)))
        trades.sort(key=lambda t: t[0])
        return next((st for _, st in trades[:self.trade_probes]
                     if self.probe(st) >= 0 and self.probes[key(st)]["bytes"] < here["bytes"]), None)
