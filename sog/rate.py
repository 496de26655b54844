"""Rate control: the smallest file of a profile (native by default, or sogv2: ``codec``, ``ladder``) whose renders
reach a PSNR against the original's.

`encode_to_psnr` walks `LEVELS`, bit depths of the native profile from finest to coarsest (the
bytes fall along the list; `scripts/bench_attributes.py --ladder` measures each step), by binary
search: each probe encodes, decodes and renders from the cameras it is given (the pipeline passes
`sog.render.views.search_cameras`). PSNR is assumed to fall
along the list; a scene that breaks that can only make the search stop early (a larger file that
still reaches the target), never return a level below the target that it measured.

The list's order suits plant and tarot; other scenes lose PSNR per byte in another order (on playbot
the SH codebook step is cheap). So a second stage tries, from the level found, each setting half a step
coarser on its own (`coarser`: half a bit, or the levels over sqrt 2) and moves on from the one that still
reaches the target and saves the most bytes per dB given up (which leaves PSNR to spend on the next
round: on playbot the scale and rotation half steps saved 640 and 390 KB per dB, the SH codebook's 125), for
``refine_rounds`` rounds. With importance layers, a third stage (`rebalance`, ``layer_rounds`` rounds) steps one
attribute of one layer at a time (`layer_step`, stored as ``Options.layer_steps``): the layers' drops come
from a small-error estimate, and the measured bytes per dB of a half step differ between layers (tarot: 59 KB
per dB for the first layer's scales, 15 for the last layer's colours). When no such step reaches the target on its
own, it trades: a step that saves many bytes per dB, paid for by a finer step where a dB saves few. Then one round
of quarter steps spends what PSNR is left over the target. The smallest file met that reaches the target is
written.
"""

from __future__ import annotations

from .codec import native
from .codec.base import RateResult
from .codec.layers import LAYER_STEPPED, layer_drops, layer_options
from .grid import grid_shape
from .splats import Splats

#: the settings the second stage steps, one at a time (`coarser`); none goes past the list's coarsest level
STEPPED = ("means_bits", "quat_bits", "scale_levels", "color_levels", "sh_levels")


def layer_step(settings: dict, layers: int, k: int, name: str, size: float) -> dict:
    """``settings`` with attribute ``name`` (one of `LAYER_STEPPED`) of layer ``k`` of ``layers`` stored ``size``
    steps coarser (negative: finer) than its drop says, through ``layer_steps``."""
    steps = [list(row) for row in settings.get("layer_steps") or [[0.0] * len(LAYER_STEPPED)] * layers]
    steps[k][LAYER_STEPPED.index(name)] += size
    return {**settings, "layer_steps": tuple(tuple(row) for row in steps)}


def coarser(name: str, value: float, size: float) -> float:
    """``value`` of setting ``name`` one step of ``size`` bits coarser: ``size`` bits less for a bit depth, the
    levels over 2^size (rounded) for a level count. The ladder's steps are whole ones; the second stage takes
    half and quarter steps, which land closer to the target."""
    return value - size if name.endswith("_bits") else int(round(value / 2 ** size))


#: the second stage's step sizes, in turn, each with its most rounds (None: ``refine_rounds``): half steps, then one
#: round of quarter steps to spend what PSNR is left (on tarot every half step fell below the target and a quarter
#: step on rotations saved 3.6 KB; more quarter rounds made kacytran's search 35 probes long for little)
STEP_SIZES = ((0.5, None), (0.25, 1))


def encode_to_psnr(layers: list[native.Layer] | Splats, target: float, options: dict | None = None,
                   cameras=None, device: str = "auto",
                   progress=None, refine_rounds: int = 4, probe_effort: int = 2, layer_rounds: int = 4,
                   trade_probes: int = 3, codec=native, ladder: list[dict] | None = None) -> RateResult:
    """Encode ``layers`` (`native.Layer`s in grid order, or one `Splats` on its `grid_shape`) at the coarsest
    `LEVELS` entry whose renders reach ``target`` dB; each layer keeps its drop relative to that level.

    ``options`` are native-profile options; they win over a level's bit depths (a depth fixed by the caller
    stays fixed). ``cameras``: the views every probe is rendered from and compared on (the caller's choice:
    `sog.render.views.search_cameras`, which the pipeline resolves). ``progress(name)`` is called after each
    probe; up to ``refine_rounds`` rounds of single-setting
    half steps follow the list, then (with several layers) up to ``layer_rounds`` rounds of one-layer steps and
    trades (at most ``trade_probes`` probed per round), then a round of quarter steps (`STEP_SIZES`; 0: the list
    only).

    Probes encode at image-codec effort ``probe_effort`` at most (the codecs are lossless, so effort changes
    the bytes a little and the PSNR not at all; on tarot effort 2 took 1.3 s and wrote 0.7 % more bytes than
    effort 4's 4.0 s), and the SH palette is fitted once; the chosen settings are then encoded once at the
    requested effort. ``tried`` reports the probes' bytes.

    ``codec``: the profile module searched (``Options``, ``encode_layers``, ``decode``, ``band_limited``,
    ``fit_sh_palette``; its options have the fields of `STEPPED` and the native layer fields, so `sog.codec.layers.layer_options`
    applies); ``ladder``: its levels, finest first (default `LEVELS`)."""
    from . import metrics
    from .errors import SogError
    from .render import render

    ladder = native.LEVELS if ladder is None else ladder
    if isinstance(layers, Splats):
        height, width = grid_shape(len(layers))
        layers = [native.Layer(layers, width, height)]
    splats = Splats.concat([layer.splats for layer in layers])
    options = dict(options or {})
    base = codec.Options(**options)
    probe_options = {**options, "effort": min(base.effort, probe_effort)}
    limited = codec.band_limited(splats, base)  # the bands the file will store
    palette = codec.fit_sh_palette(limited, base) if limited.shN.shape[1] else None
    if not cameras:
        raise SogError("the rate search needs cameras to render its probes from")
    cams = list(cameras)
    reference = render(splats, cams, device=device)
    probes: dict[tuple, dict] = {}  # settings (as `key`) -> level, settings, meta, files, bytes, psnr

    def key(settings: dict) -> tuple:
        return tuple(sorted(settings.items()))

    def probe(settings: dict, level: int | None = None) -> float:
        if key(settings) not in probes:
            meta, files = codec.encode_layers(layers, codec.Options(**{**settings, **probe_options}),
                                               sh_palette=palette)
            test = render(codec.decode(meta, files.__getitem__), cams, device=device)
            views_psnr = metrics.view_psnrs(reference, test)
            probes[key(settings)] = {"level": level, "settings": settings, "meta": meta, "files": files,
                                     "bytes": sum(len(v) for v in files.values()),
                                     "psnr": sum(views_psnr) / len(views_psnr)}
            if progress:
                progress(f"level {level}" if level is not None else "refine")
        return probes[key(settings)]["psnr"]

    # invariant: level `lo` reaches the target (level 0 is probed only when no other level does); levels past
    # `hi` are not known to
    lo, hi = 0, len(ladder) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if probe(ladder[mid], mid) >= target:
            lo = mid
        else:
            hi = mid - 1
    best = lo
    reached = best > 0 or probe(ladder[0], 0) >= target
    chosen = ladder[best]
    def saved_per_db(st: dict, start: dict) -> float:  # bytes saved per dB of PSNR given up (a free step: very many)
        p, here = probes[key(st)], probes[key(start)]
        return (here["bytes"] - p["bytes"]) / max(here["psnr"] - p["psnr"], 1e-3)

    def refine(chosen: dict, size: float, rounds: int) -> dict:
        """Up to ``rounds`` rounds of single-setting steps of ``size``; a setting whose step failed once is not
        tried again at that size (the PSNR only falls as others get coarser)."""
        open_steps = [name for name in STEPPED if name not in options and (name != "sh_levels" or palette is not None)]
        for _ in range(rounds):
            passing = []
            for name in list(open_steps):
                floor = ladder[-1][name]
                if chosen[name] <= floor:
                    open_steps.remove(name)
                    continue
                settings = {**chosen, name: max(floor, coarser(name, chosen[name], size))}
                if settings[name] == chosen[name] or probe(settings) < target:
                    open_steps.remove(name)  # too small a step to change anything, or it fails
                else:
                    passing.append(settings)
            if not passing:
                break
            chosen = max(passing, key=lambda st: saved_per_db(st, chosen))
        return chosen

    def stored(settings: dict) -> tuple:
        """What each layer is stored with under ``settings`` (two settings that store the same: one file)."""
        opts = codec.Options(**settings)
        return tuple(tuple(getattr(layer_options(opts, layer_drops(opts, i, layer)), name)
                           for name in ("means_bits", "quat_bits", "scale_levels", "color_levels"))
                     for i, layer in enumerate(layers))

    def rebalance(chosen: dict, rounds: int) -> dict:
        """Up to ``rounds`` rounds of half steps of one attribute in one layer (`layer_step`): the step that
        reaches the target and saves the most bytes per dB, or else the first of the ``trade_probes`` most
        promising trades that reaches it with fewer bytes."""
        for _ in range(rounds):
            now = stored(chosen)
            moves = []  # (settings, layer, attribute) of each coarser step that changes the file
            for k in range(len(layers)):
                for name in LAYER_STEPPED:
                    settings = layer_step(chosen, len(layers), k, name, 0.5)
                    if stored(settings) != now:
                        probe(settings)
                        moves.append((settings, k, name))
            if not moves:
                break
            passing = [st for st, _, _ in moves if probes[key(st)]["psnr"] >= target]
            if passing:
                chosen = max(passing, key=lambda st: saved_per_db(st, chosen))
                continue
            # none passes: trade. A coarser step of one attribute (a), paid for by a finer step of another (b),
            # which is expected to win back the PSNR and cost the bytes that b's coarser step lost and saved
            here = probes[key(chosen)]
            refinable = [m for m in moves if stored(layer_step(chosen, len(layers), *m[1:], -0.5)) != now]
            trades = []  # (expected change in bytes, settings)
            for a, *knob_a in moves:
                for b, *knob_b in refinable:
                    pa, pb = probes[key(a)], probes[key(b)]
                    expected_psnr = here["psnr"] + pa["psnr"] - pb["psnr"]
                    if knob_a != knob_b and expected_psnr >= target and pa["bytes"] < pb["bytes"]:
                        trades.append((pa["bytes"] - pb["bytes"], layer_step(a, len(layers), *knob_b, -0.5)))
            trades.sort(key=lambda t: t[0])
            traded = next((st for _, st in trades[:trade_probes]
                           if probe(st) >= target and probes[key(st)]["bytes"] < here["bytes"]), None)
            if traded is None:
                break
            chosen = traded
        return chosen

    for size, rounds in STEP_SIZES if reached else ():
        chosen = refine(chosen, size, refine_rounds if rounds is None else min(rounds, refine_rounds))
        if size == STEP_SIZES[0][0] and len(layers) > 1 and "layer_steps" not in options:  # after the half steps
            chosen = rebalance(chosen, layer_rounds)
    # the smallest file met on the way that reaches the target (the last step's, unless an earlier round's
    # larger step was smaller still)
    if reached:
        chosen = min((p["settings"] for p in probes.values() if p["psnr"] >= target),
                     key=lambda st: probes[key(st)]["bytes"])
    found = probes[key(chosen)]
    meta, files = found["meta"], found["files"]
    if probe_options != options:  # the same values at the requested effort
        meta, files = codec.encode_layers(layers, codec.Options(**{**chosen, **options}), sh_palette=palette)
    tried = [{k: p[k] for k in ("level", "settings", "bytes", "psnr")} for p in probes.values()]
    return RateResult(meta=meta, files=files, psnr=found["psnr"], level=best, reached=reached,
                      tried=tried, settings=chosen)
