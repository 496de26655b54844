"""The whole job in a few functions: `compress` (load → reduce → [sort → fine-tune] → sort → encode → write),
`decompress` and `convert`.

The output's format comes from its extension (`sog.io.output_format`): a SOG (zip or folder) is sorted onto a grid
and encoded by a codec profile; every other format is written by its module in `sog.io` (`sog.io.WRITERS`)."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .codec import DEFAULT_PROFILE, Layer, get_profile
from .codec.spz_profile import PROFILE as SPZ_PROFILE
from .device import one_cpu_thread, resolve_device
from .errors import SogError
from .grid import grid_shape
from .reduce import REDUCE_SIZE, REDUCE_VIEWS, check_reduce_options, reduce, target_count
from .render import render
from .render.importance import sensitivities
from .render.views import TUNING_SIZE, TUNING_VIEWS, importance_views, search_cameras, tuning_cameras
from .io import (UNCOMPRESSED, WRITERS, container_size, get_writer, load, output_format, read_container,
                 write_container, write_ply)
from .io.atomic import check_destination, check_not_input
from .io.limits import check_magnitudes
from .metrics import SMALL_TARGET, RateTarget, ViewStats, view_psnrs
from .rate import RateSearch
from .sort import SORTERS, get_sorter, sort_grid
from .sort.config import ShuffleSoftSortConfig
from .sort.features import splat_features
from .splats import Splats
from .train.finetune import FINETUNE_SIZE, FINETUNE_VIEWS, FinetuneConfig, finetune
from .train.refit import RefitConfig, refit_checked, refit_views


#: default runs of ShuffleSoftSort per grid. scripts/bench_speed.py (native bytes against budget, against the
#: row-major Morton order): the start order alone is 0.49-0.63 % smaller than Morton's on plant, tarot and
#: playbot's 125K level, 40 runs 0.60-0.70 %, 53-118 runs 0.64-0.66 %; a run costs a few microseconds per
#: Gaussian on one CPU thread, so the default spends a little where the curve flattens
SORT_BUDGET = 40


@dataclass
class CompressOptions:
    profile: str = DEFAULT_PROFILE      #: a name in `sog.codec.PROFILES` (or an alias: "sog" is "native")
    sort: str = "shufflesoftsort"
    seed: int = 0
    device: str = "auto"
    effort: int = 4
    bundle: bool | None = None          #: SOG outputs: True zip, False folder; None: from `format`
    #: a name in `sog.io.WRITERS` (None: from the output's extension, `sog.io.output_format`)
    format: str | None = None
    #: options of a non-SOG format's writer (e.g. ``{"fractional_bits": 12}`` for SPZ; see its module)
    format_options: dict = field(default_factory=dict)
    sort_weights: dict[str, float] = field(default_factory=dict)  #: features to sort on (sort.features)
    sort_options: dict = field(default_factory=dict)  #: options of the sorter (see its config dataclass)
    #: work budget of ShuffleSoftSort in runs per grid (None: until it converges); the same bytes on any machine
    sort_budget: int | None = SORT_BUDGET
    #: opt-in wall-clock cap of ShuffleSoftSort per compress (the bytes then depend on the machine)
    sort_seconds: float | None = None
    profile_options: dict = field(default_factory=dict)
    quality: str | None = None          #: the profile's preset (`Profile.presets`; "small" is a `RateTarget`)
    #: the smallest file whose tuning views reach this mean PSNR (`sog.rate`), with the floors of
    #: `sog.metrics.RateTarget.for_psnr` on the 10th-percentile and worst view unless ``psnr_p10``/``psnr_worst``
    #: say otherwise
    target_psnr: float | None = None
    psnr_p10: float | None = None       #: the 10th-percentile tuning view's floor (dB); alone: the only mean-free floor
    psnr_worst: float | None = None     #: the worst tuning view's floor (dB)
    #: the rate search's tuning views (`sog.render.views.search_cameras`): how many, and their size in pixels
    search_views: int = TUNING_VIEWS
    search_size: int = TUNING_SIZE
    #: reuse an earlier result's split and sort (`CompressResult.layout`) of the same scene: no importance, no sort
    layout: list[tuple[torch.Tensor, dict[str, float]]] | None = None
    #: the sorter's config, built from ``sort``, ``sort_options`` and ``sort_budget`` when the options are made
    sort_config: Any = field(init=False, repr=False, compare=False, default=None)
    #: the same as options (field names), for the fine-tune's re-sorts (`sog.train.SelfOrganizingGrid.sort_`)
    sort_plugin_options: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    #: the share of Gaussians to remove (0 <= f < 1, `sog.reduce`); None with ``max_gaussians`` None: keep all
    reduce: float | None = None
    #: keep at most this many Gaussians (`sog.reduce`); not with ``reduce``
    max_gaussians: int | None = None
    #: SOG outputs: fine-tune the (reduced) scene for this many steps before it is encoded (`sog.train.finetune`:
    #: distillation towards renders of itself from tuning views + the neighbour loss on its sorted grid); None: off
    finetune: int | None = None
    #: of those steps, the last ones that train through the profile's quantisers (`Profile.quantiser`, straight-
    #: through gradients); 0: none (the default: measured not to pay, docs/finetune.md)
    finetune_qat: int = 0
    #: after a reduction (``reduce`` / ``max_gaussians``; not a count search's candidates): re-fit the survivors'
    #: colour, opacity and scales for this many steps towards renders of the whole scene from tuning views, kept
    #: where other tuning views say it helps (`sog.train.refit.refit_checked`); 0: off (the default: on the judging
    #: views it lowered the p10 and the worst view, docs/reduce.md)
    refit: int = 0
    #: with a rate target (``--quality small``, ``--psnr``) and no ``reduce``/``max_gaussians``: also search how many
    #: Gaussians to keep (`COUNT_LADDER`, the smallest file that reaches the target); False: keep every one
    search_count: bool = True

    def __post_init__(self) -> None:
        """Check the sort options once, before any work, and build the sorter's config from them: ShuffleSoftSort
        sorts for the codec's bytes (objective "codec") with ``sort_budget`` runs on every grid, unless
        ``sort_options`` say otherwise."""
        sorter = get_sorter(self.sort)
        if self.sort_budget is not None and self.sort_budget < 0:
            raise SogError(f"--sort-budget must be 0 or more runs, not {self.sort_budget}")
        if self.sort_seconds is not None and not self.sort_seconds > 0:  # also catches NaN
            raise SogError(f"--sort-seconds must be a positive number of seconds, not {self.sort_seconds}")
        options = dict(self.sort_options)
        weighted = sorted(k for k, w in self.sort_weights.items() if k != "means" and w)
        if weighted and not sorter.standardised:
            learning = ", ".join(name for name, s in SORTERS.items() if s.standardised)
            raise SogError(f"--sort-weights: the {self.sort} sorter does not sort on features (only {learning} "
                           f"do), so it cannot weight {', '.join(weighted)}")
        if sorter.config is ShuffleSoftSortConfig:
            # the codec objective sorts on the positions alone: weights on other attributes ask for the smooth one
            options.setdefault("objective", "smooth" if weighted else "codec")
            options.setdefault("budget", self.sort_budget)
        self.sort_config = sorter.configure(options)
        self.sort_plugin_options = options
        check_reduce_options(self.reduce, self.max_gaussians)
        if self.finetune is not None and self.finetune < 0:
            raise SogError(f"--finetune must be 0 or more steps, not {self.finetune}")
        if self.finetune_qat:
            if self.finetune is None:
                raise SogError("--qat sets how many of the fine-tune's steps are quantisation-aware: give "
                               "--finetune too")
            if not 0 <= self.finetune_qat <= self.finetune:
                raise SogError(f"--qat must be 0 to the {self.finetune} fine-tune steps, not {self.finetune_qat}")
        if isinstance(self.refit, bool) or not isinstance(self.refit, (int, np.integer)) or self.refit < 0:
            raise SogError(f"--refit must be a whole number of 0 or more steps, not {self.refit}")
        if self.refit and self.reduce is None and self.max_gaussians is None:
            raise SogError("--refit re-fits the Gaussians a reduction keeps: give --reduce or --max-gaussians too")
        if not (self.search_views >= 1 and self.search_size >= 1):
            raise SogError(f"the rate search needs at least one view of at least one pixel, not {self.search_views} "
                           f"views of {self.search_size} px")


@dataclass
class CompressResult:
    count: int
    sh_degree: int
    grid: tuple[int, int]                #: (H, W) of the (first) grid; (1, N) for formats without one
    bytes: int
    seconds: dict[str, float]
    order: torch.Tensor  #: (N,) long: the input index of the i-th Gaussian of the file (layer by layer)
    layers: list[tuple[int, int]] = field(default_factory=list)  #: (H, W) grid of each importance layer
    unstored: list[str] = field(default_factory=list)  #: extra PLY properties the .sog cannot hold
    #: with a rate target: the mean PSNR measured for the written file, on the search's tuning cameras
    #: (`sog.render.views.search_cameras`), not `sog eval`'s judging views
    psnr: float | None = None
    #: with a rate target (``target_psnr``, ``psnr_p10``/``psnr_worst`` or ``quality="small"``): the target and the
    #: chosen file's mean, p10 and worst tuning view (dicts), level and settings chosen, whether the target was
    #: reached, every probe
    rate: dict | None = None
    #: per layer: the input indices in grid order (N_k,) and the drops (`CompressOptions.layout` reuses it)
    layout: list[tuple[torch.Tensor, dict[str, float]]] = field(default_factory=list)
    format: str = "sog"  #: the name in `sog.io.WRITERS` of what was written
    #: the Gaussians of the input (``count`` is what the file holds: fewer after a reduction)
    source_count: int | None = None
    #: after a reduction: (count,) long, the input index of each kept Gaussian (``order`` and ``layout`` then
    #: index the reduced scene); None without one
    kept: torch.Tensor | None = None


def compress(source: Splats | str | os.PathLike, output: str | os.PathLike, options: CompressOptions | None = None,
             *, overwrite: bool = False, quiet: bool = False) -> CompressResult:
    """Sort ``source`` onto a grid and write it as a ``.sog`` (zip) or a SOG folder, or write it in another
    compressed format chosen by the output's extension (``.spz``, ``.compressed.ply``, ``.glb``: `sog.io.WRITERS`).
    A plain ``.ply`` output is refused (it is not compressed: `convert` or `decompress` write one)."""
    options = options or CompressOptions()
    fmt = output_format(output, options.format) if options.bundle is None else (
        "sog" if options.bundle else "sog-folder")
    if fmt in UNCOMPRESSED:
        check_not_input(output, [] if isinstance(source, Splats) else [source])  # the more basic mistake first
        compressed = ", ".join(end for name, w in WRITERS.items() if name not in UNCOMPRESSED for end in w.endings)
        raise SogError(f"{output}: a .{fmt} output is the uncompressed scene; write it with `sog convert` or "
                       f"`sog decompress` (or choose {compressed} or a SOG folder)")
    if options.finetune is not None and fmt not in ("sog", "sog-folder"):
        raise SogError(f"--finetune applies to SOG outputs (.sog or a folder), not {fmt}")
    if fmt == "lod":
        return _compress_to_lod(source, output, options, overwrite)
    if WRITERS[fmt].function is not None:
        return _compress_to_file(source, output, fmt, options, overwrite, quiet)
    profile = get_profile(options.profile)
    overrides = {"effort": options.effort, "seed": options.seed, **options.profile_options}
    profile_options, fixed, target = profile.options(options.quality, rate_target(options), overrides)
    if options.finetune_qat and profile.quantiser(profile_options) is None:
        raise SogError(f"--qat: the {profile.name} profile has no quantisers to train through")
    check_destination(output, [] if isinstance(source, Splats) else [source], overwrite)  # before any work
    device = resolve_device(options.device)  # fail before any work on a bad --device
    with one_cpu_thread(device):  # the same bytes for any core count
        if target is not None and _counts_searched(options):
            return _compress_searching_count(source, output, fmt, options, profile, profile_options, fixed, target,
                                             device, overwrite, quiet)
        return _compress(source, output, fmt, options, profile, profile_options, fixed, target, device,
                         overwrite, quiet)


def rate_target(options: CompressOptions) -> RateTarget | None:
    """The `RateTarget` that ``options`` ask for: ``target_psnr`` as `RateTarget.for_psnr` (``psnr_p10`` and
    ``psnr_worst`` replacing its derived floors), or the floors alone without a ``target_psnr``; None: no search
    unless a preset is one."""
    if options.target_psnr is not None:
        return RateTarget.for_psnr(options.target_psnr, options.psnr_p10, options.psnr_worst)
    if options.psnr_p10 is None and options.psnr_worst is None:
        return None
    return RateTarget(p10=options.psnr_p10, worst=options.psnr_worst)


def _compress(source, output, fmt: str, options: CompressOptions, profile, profile_options, fixed,
              target: RateTarget | None, device, overwrite: bool, quiet: bool) -> CompressResult:
    """`compress` once its options are checked: load, plan, sort, encode, write."""
    seconds: dict[str, float] = {}
    # the scene goes straight into _encode (no reference kept here: it may drop the unsorted copy); so does the whole
    # scene before a reduction when a fine-tune distils it (arguments are evaluated in order: _scene has run when
    # ``teacher`` is read)
    whole: dict = {}
    keep = None if options.finetune is None else (lambda scene: whole.update(scene=scene))
    result, meta, files = _encode(*_scene(source, options, device, seconds, quiet, before_reduce=keep), source, fmt,
                                  options, profile, profile_options, fixed, target, device, quiet, seconds,
                                  teacher=whole.pop("scene", None))
    return _write(result, meta, files, output, fmt, profile, overwrite)


#: the shares of Gaussians the count search tries removing, in turn, until the unquantised reduced scene misses the
#: target on the search cameras
COUNT_LADDER = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _counts_searched(options: CompressOptions) -> bool:
    """Whether a rate search also searches the count: asked for (``search_count``), and nothing else fixes it
    (``reduce``, ``max_gaussians``, a reused ``layout``) or trains the scene first (``finetune``)."""
    return (options.search_count and options.reduce is None and options.max_gaussians is None
            and options.layout is None and options.finetune is None)


def _compress_searching_count(source, output, fmt: str, options: CompressOptions, profile, profile_options, fixed,
                              target: RateTarget, device, overwrite: bool, quiet: bool) -> CompressResult:
    """`compress` to SOG with a rate target that chooses the count and the bits together (`_count_walk`; each
    candidate scene gets the profile's rate search)."""
    seconds: dict[str, float] = {}
    splats, source_path, source_count, _ = _scene(source, options, device, seconds, quiet)
    bundle = fmt == "sog"
    t0 = time.perf_counter()

    def encoded(scene: Splats, kept, cameras, reference) -> tuple:
        result, meta, files = _encode(scene, source_path, source_count, kept, source, fmt, options, profile,
                                      profile_options, fixed, target, device, quiet, seconds if kept is None else {},
                                      original=None if kept is None else splats,
                                      judge=None if kept is None else (cameras, reference))
        size = container_size(meta, files, bundle=bundle, compress_meta=profile.compress_meta)
        return size, result.rate["reached"], (result, meta, files)

    (result, meta, files), tried = _count_walk(splats, source_path, target, options, device, quiet, encoded)
    result.seconds = {**seconds, **result.seconds, "count_search": time.perf_counter() - t0}
    result.rate = {**result.rate, "counts": tried}
    return _write(result, meta, files, output, fmt, profile, overwrite)


def _count_walk(splats: Splats, source_path, target: RateTarget, options: CompressOptions, device, quiet: bool,
                encode) -> tuple[object, list[dict]]:
    """The count search of a rate target, for any output: ``(what encode returned for the chosen scene, every
    count tried)``.

    1. ``splats`` reduced (`sog.reduce`, on its tuning views) by each share of `COUNT_LADDER` in turn, until the
       reduced scene itself, unquantised, misses ``target`` on the search cameras (judged against the whole
       scene's renders).
    2. ``encode(scene, kept, cameras, reference) -> (bytes, reached, payload)`` (``kept``: (n,) input rows, None
       for the whole scene; ``cameras``: the search cameras; ``reference``: the whole scene's renders from them) on
       the most reduced scene that passed, then on the next less reduced one, ... (the whole scene last) until
       one reaches the target; then on one more (the bits a heavier reduction leaves may cost more than it
       saves), and the smaller of the two is chosen. Without a share that passes, the whole scene alone.

    Every choice is measured on tuning views (the search cameras and the reduction's), never judging ones. Memory:
    the scene and the two latest reductions."""
    cameras = search_cameras(splats, source_path, options.search_views, options.search_size)
    reference = render(splats, cameras, device=device)
    tuning = tuning_cameras(splats, source_path, views=REDUCE_VIEWS, size=REDUCE_SIZE)

    def reduced(share: float):
        return reduce(splats, target_count(len(splats), share), tuning, seed=options.seed, device=device)

    tried, latest = [], []                  # latest: the last two (share, reduction) that passed unquantised
    with tqdm(total=len(COUNT_LADDER), desc="count search", unit="count", disable=quiet, leave=False) as bar:
        for share in COUNT_LADDER:
            reduction = reduced(share)
            stats = ViewStats.of(view_psnrs(render(reduction.splats, cameras, device=device), reference))
            tried.append({"removed": share, "kept": reduction.count, "unquantised": stats.as_dict()})
            bar.update(1)
            if not target.met(stats):
                break
            latest = [*latest[-1:], (share, reduction)]

    best = None
    passed = [row["removed"] for row in tried if target.met(ViewStats(**row["unquantised"]))]
    for share in reversed([0.0, *passed]):  # 0.0: the whole scene
        if share == 0.0:
            scene, kept = splats, None
            tried.insert(0, {"removed": 0.0, "kept": len(splats)})
        else:
            reduction = dict(latest).get(share) or reduced(share)
            scene, kept = reduction.splats, reduction.kept
        candidate = encode(scene, kept, cameras, reference)
        next(r for r in tried if r["removed"] == share).update(bytes=candidate[0], reached=candidate[1])
        if not candidate[1] and share > 0:
            continue
        if best is not None:
            best = min(best, candidate, key=lambda c: c[0])
            break
        best = candidate
    return best[2], tried


def _write(result: CompressResult, meta: dict, files: dict[str, bytes], output, fmt: str, profile,
           overwrite: bool) -> CompressResult:
    """Write an encoded scene (`_encode`) as ``output``; ``result`` with its bytes and write seconds."""
    t0 = time.perf_counter()
    result.bytes = write_container(meta, files, output, bundle=fmt == "sog", overwrite=overwrite,
                                   compress_meta=profile.compress_meta)
    result.seconds["write"] = time.perf_counter() - t0
    return result


def _encode(splats: Splats, source_path, source_count: int, kept, source, fmt: str, options: CompressOptions,
            profile, profile_options, fixed, target: RateTarget | None, device, quiet: bool, seconds: dict,
            original: Splats | None = None, judge: tuple[list, torch.Tensor] | None = None,
            teacher: Splats | None = None) -> tuple[CompressResult, dict, dict[str, bytes]]:
    """Plan, sort and encode the scene ``splats`` (`_scene`'s four results first) -> (the result, its bytes not yet
    known, meta, files). ``original``: the scene the rate search judges against when it is not ``splats`` itself
    (the input, before a fine-tune or a count search's reduction); ``judge``: ``(cameras, reference)``, the search
    cameras of ``original`` and its (C, H, W, 3) renders from them, when the caller has them (a count search
    renders them once for all its candidates); ``teacher``: the scene a fine-tune distils when it is not ``splats``
    itself (the whole scene before ``--reduce`` / ``--max-gaussians``: the fine-tune recovers what they cost)."""
    if options.finetune is not None:
        t0 = time.perf_counter()
        with one_cpu_thread():  # it renders on the CPU: pinned to one thread there whatever the device
            original, splats = splats, _finetune(splats, source_path, options, device, quiet,
                                                 profile.quantiser(profile_options), teacher)
        teacher = None  # only the fine-tune renders it
        seconds["finetune"] = time.perf_counter() - t0

    # importance layers, when the profile stores them (the Gaussians that make little of the pictures go coarser)
    n = len(splats)
    groups = [(torch.arange(n), {})]
    if options.layout is not None:
        _check_layout(options.layout, n, profile)
    elif profile.wants_layers(n, profile_options):
        t0 = time.perf_counter()
        # each Gaussian's render sensitivity in each importance view (the worst view bounds a layer's drops)
        sensitivity = sensitivities(splats, importance_views(splats, source_path), device, seed=options.seed,
                                    per_view=True)
        groups = profile.plan_layers(splats, sensitivity, profile_options)
        seconds["importance"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    layout = options.layout if options.layout is not None else [
        (_grid_order(splats, index, options, device, quiet, profile.layer_shape(len(index), n)), drops)
        for index, drops in groups]
    layers = []
    for index, drops in layout:
        height, width = profile.layer_shape(len(index), n)
        layers.append(Layer(splats.permute(torch.as_tensor(index)), width, height, dict(drops)))
    order = torch.cat([torch.as_tensor(index) for index, _ in layout])
    seconds["sort"] = time.perf_counter() - t0
    sh_degree, unstored = splats.sh_degree, sorted(splats.extras)
    if target is None:
        original = None  # only the rate search judges against it
        if not isinstance(source, Splats):
            del splats  # the layers hold every Gaussian (in grid order); the unsorted copy would only add N to the peak

    t0 = time.perf_counter()
    rate = None
    if target is not None:
        if judge is not None:
            cameras, reference = judge
        else:
            cameras = search_cameras(splats if original is None else original, source_path, options.search_views,
                                     options.search_size)
            # after a fine-tune the probes are judged against the input's renders, not the fine-tuned scene's
            reference = None if original is None else render(original, cameras, device=device)
        bundle = fmt == "sog"

        def size(meta, files):  # the bytes the search chooses on: what write_container will write
            return container_size(_with_source(meta, kept, source_count), files, bundle=bundle,
                                  compress_meta=profile.compress_meta)

        with tqdm(total=None, desc=f"encode to {target}", unit="probe", disable=quiet, leave=False) as bar:
            rate = RateSearch(profile, profile.ladder, layers, target, fixed, cameras, device,
                              progress=lambda name: bar.update(1), reference=reference, size=size).run()
        meta, files = rate.meta, rate.files
    else:
        with tqdm(total=None, desc="encode", unit="plane", disable=quiet, leave=False) as bar:
            meta, files = profile.encode(layers, profile_options, progress=lambda name: bar.update(1))
    seconds["encode"] = time.perf_counter() - t0
    meta = _with_source(meta, kept, source_count)
    result = CompressResult(count=n, sh_degree=sh_degree, grid=(layers[0].height, layers[0].width),
                            layers=[(layer.height, layer.width) for layer in layers], bytes=0, seconds=seconds,
                            order=order, unstored=unstored,
                            layout=[(torch.as_tensor(index), layer.drops) for (index, _), layer in zip(layout, layers)],
                            psnr=None if rate is None else rate.psnr, source_count=source_count, kept=kept,
                            rate=_rate_report(rate))
    return result, meta, files


def _rate_report(rate) -> dict | None:
    """What `CompressResult.rate` holds of a `sog.rate.RateResult` (None: no search ran)."""
    if rate is None:
        return None
    return {"target": rate.target.as_dict(), "stats": rate.stats.as_dict(), "level": rate.level,
            "reached": rate.reached, "settings": rate.settings, "tried": rate.tried}


def _with_source(meta: dict, kept, source_count: int) -> dict:
    """``meta`` of a reduced scene (``kept`` not None) with the count it came from, in a key SOG v2 readers
    ignore; ``meta`` itself otherwise."""
    return meta if kept is None else {**meta, "sog": {"source_count": source_count}}


def _grid_order(splats: Splats, index: torch.Tensor, options: CompressOptions, device, quiet: bool,
                shape: tuple[int, int] | None = None) -> torch.Tensor:
    """The Gaussians ``index`` (n_k,) of ``splats`` sorted onto their grid (``shape`` (H, W); default
    `grid_shape`): their input indices in grid order, sorted with ``options.sort_config`` (the same budget of runs on
    every grid: a run costs in proportion to the grid's size); an optional time cap is shared out by size."""
    whole = len(index) == len(splats) and torch.equal(torch.as_tensor(index), torch.arange(len(splats)))
    part = splats if whole else splats.permute(index)  # one grid of all: no copy of the scene for its features
    config = options.sort_config
    if isinstance(config, ShuffleSoftSortConfig) and options.sort_seconds is not None \
            and "max_seconds" not in options.sort_options:
        config = replace(config, max_seconds=options.sort_seconds * len(part) / len(splats))
    perm = sort_grid(splat_features(part, options.sort_weights), shape or grid_shape(len(part)), options.sort,
                     seed=options.seed, device=device, progress=not quiet, config=config)
    return index[perm[:len(part)]]


def _finetune(splats: Splats, source_path, options: CompressOptions, device, quiet: bool,
              quantise=None, teacher: Splats | None = None) -> Splats:
    """``splats`` fine-tuned for ``options.finetune`` steps (`sog.train.finetune`), in the same row order: sorted
    onto one grid first (as `_grid_order` sorts), then trained on the tuning views (`tuning_cameras`, never
    judging ones) towards renders of itself with the neighbour loss on that grid, re-sorted by the plugin's hook
    with the same sorter; its last ``options.finetune_qat`` steps through ``quantise`` (the profile's
    `Profile.quantiser`; None: it has none). The targets are renders of ``teacher`` (None: ``splats`` itself; the
    cameras are placed around it). The encode's own sort comes after. Every Gaussian is kept."""
    n = len(splats)
    order = _grid_order(splats, torch.arange(n), options, device, quiet)
    cameras = tuning_cameras(splats if teacher is None else teacher, source_path, views=FINETUNE_VIEWS,
                             size=FINETUNE_SIZE)
    config = FinetuneConfig(steps=options.finetune, sort=options.sort, sort_options=options.sort_plugin_options,
                            sort_weights=dict(options.sort_weights), qat_steps=options.finetune_qat)
    tuned = finetune(splats.permute(order), cameras, config, seed=options.seed, progress=not quiet,
                     quantise=quantise, teacher=teacher).splats
    return tuned.permute(torch.argsort(order))                  # row i: input Gaussian i again


def _check_layout(layout, n: int, profile) -> None:
    """A reused layout must hold every Gaussian exactly once (its indices a permutation of 0..n-1)."""
    every = torch.cat([torch.as_tensor(index) for index, _ in layout]) if layout else torch.zeros(0, dtype=torch.long)
    if len(every) != n or not torch.equal(torch.sort(every).values, torch.arange(n)):
        raise SogError(f"layout does not hold each of the {n} Gaussians exactly once")
    most = profile.max_layers()
    if most is not None and len(layout) > most:
        raise SogError(f"the {profile.name} profile stores {'one grid' if most == 1 else f'{most} layers'}; "
                       f"the layout has {len(layout)} layers")


def _scene(source, options: CompressOptions, device, seconds: dict, quiet: bool = True,
           before_reduce=None) -> tuple[Splats, str | os.PathLike | None, int, torch.Tensor | None]:
    """The scene every compress path starts from: ``source`` loaded (a path) or checked as a loaded file is
    (`Splats`), then reduced if ``options`` ask for it (`sog.reduce`, on tuning views; the default keeps every
    Gaussian) and its survivors re-fitted where that helps (`sog.train.refit.refit_checked`,
    ``options.refit`` steps on `refit_views`, checked on 24 other tuning views; off by default).
    Returns the scene, its path (None for `Splats`), the count it came from, and the (count,) input index of each
    kept Gaussian (None without a reduction); the seconds go into ``seconds``. ``before_reduce(scene)`` is called
    with the whole scene before it is reduced."""
    t0 = time.perf_counter()
    splats = load(source) if not isinstance(source, Splats) else check_magnitudes(source.validate(), "scene")
    seconds["load"] = time.perf_counter() - t0
    source_path = None if isinstance(source, Splats) else source
    source_count = len(splats)
    if options.reduce is None and options.max_gaussians is None:
        return splats, source_path, source_count, None
    if before_reduce is not None:
        before_reduce(splats)
    t0 = time.perf_counter()
    keep = target_count(source_count, options.reduce, options.max_gaussians)
    cameras = tuning_cameras(splats, source_path, views=REDUCE_VIEWS, size=REDUCE_SIZE)
    reduction = reduce(splats, keep, cameras, seed=options.seed, device=device)
    seconds["reduce"] = time.perf_counter() - t0
    reduced = reduction.splats
    if options.refit and len(reduced) < source_count:
        t0 = time.perf_counter()
        check = tuning_cameras(splats, source_path, views=2 * REDUCE_VIEWS, size=REDUCE_SIZE)
        fit = refit_views(splats, source_path, check)
        if fit:
            with one_cpu_thread():                      # the fine-tune's bytes are pinned on one thread
                reduced, _ = refit_checked(reduced, splats, fit, check, RefitConfig(steps=int(options.refit)),
                                           seed=options.seed, progress=not quiet)
        seconds["refit"] = time.perf_counter() - t0
    return reduced, source_path, source_count, reduction.kept


def _compress_to_file(source, output, fmt: str, options: CompressOptions, overwrite: bool,
                      quiet: bool = True) -> CompressResult:
    """`compress` to a format with a writer of its own: load, order (`stream_order`), write.

    ``--quality small`` and ``--psnr`` work for every such format: they choose the count (`_count_walk`: fewer
    Gaussians, merged as ``--reduce`` merges) and, for a format with a profile in `FORMAT_PROFILES` (SPZ), its
    writer's settings too (the smallest file on its ladder whose renders from the search cameras reach the target,
    `sog.rate.RateSearch`). A format with no settings of its own (compressed PLY, GLB) has nothing else to choose:
    a target with the count fixed (``--keep-all``, ``--reduce``, ``--max-gaussians``) is refused, and ``--quality
    high`` is its one precision, the default."""
    profile = FORMAT_PROFILES.get(fmt)
    wanted = rate_target(options)
    if options.profile_options:
        raise SogError(f"--layers applies to SOG outputs, not {fmt}; the {fmt} writer's own choices are in "
                       f"docs/formats.md")
    settings, fixed, target = None, {}, None
    if profile is not None:
        settings, fixed, target = profile.options(options.quality, wanted, dict(options.format_options))
    else:
        target = wanted if wanted is not None else SMALL_TARGET if options.quality == "small" else None
        if target is not None and not _counts_searched(options):
            raise SogError(f"a {fmt} file has no settings of its own to search: --psnr and --quality small choose "
                           f"only how many Gaussians it keeps, which --keep-all, --reduce and --max-gaussians fix")
    check_destination(output, [] if isinstance(source, Splats) else [source], overwrite)  # before any work
    device = resolve_device(options.device)
    seconds: dict[str, float] = {}
    own: dict = {}  # what a reduced scene's encoding keeps of the whole scene's (`Profile.source_options`)
    with one_cpu_thread(device):  # the same choice for any core count
        splats, source_path, source_count, kept = _scene(
            source, options, device, seconds, quiet,
            before_reduce=None if profile is None else lambda whole: own.update(profile.source_options(whole)))
        if target is not None and _counts_searched(options):
            t0 = time.perf_counter()
            own = {} if profile is None else profile.source_options(splats)

            def encoded(scene: Splats, kept, cameras, reference) -> tuple:
                order = stream_order(scene, options.sort)
                held = fixed if kept is None else {**own, **fixed}
                data, rate = _file_bytes(scene.permute(order), fmt, options, profile, settings, held, target,
                                         cameras, reference, device, quiet)
                return len(data), rate["reached"], (data, order, rate, kept, scene)

            (data, order, rate, kept, scene), tried = _count_walk(splats, source_path, target, options, device,
                                                                  quiet, encoded)
            _write_bytes(output, data, overwrite)
            seconds["count_search"] = time.perf_counter() - t0
            return _file_result(scene, output, fmt, order, seconds, source_count, kept, {**rate, "counts": tried})
    t0 = time.perf_counter()
    order = stream_order(splats, options.sort)
    splats = splats.permute(order)
    seconds["sort"] = time.perf_counter() - t0
    if kept is not None and own:  # reduced by --reduce or --max-gaussians
        settings, fixed = replace(settings, **{k: v for k, v in own.items() if k not in fixed}), {**own, **fixed}
    t0 = time.perf_counter()
    rate = None
    if profile is None:
        get_writer(fmt)(splats, output, overwrite=overwrite, **options.format_options)
    elif target is None:
        get_writer(fmt)(splats, output, overwrite=overwrite, settings=settings)
    else:
        rate = _search_format(profile, splats, source_path, target, fixed, options, device, quiet)
        _write_bytes(output, next(iter(rate.files.values())), overwrite)
    seconds["write"] = time.perf_counter() - t0
    return _file_result(splats, output, fmt, order, seconds, source_count, kept, _rate_report(rate))


def _file_result(splats: Splats, output, fmt: str, order: torch.Tensor, seconds: dict, source_count: int, kept,
                 rate: dict | None) -> CompressResult:
    """The `CompressResult` of a written file of a format without a grid (``splats`` as written)."""
    n = len(splats)
    return CompressResult(count=n, sh_degree=splats.sh_degree, grid=(1, n), layers=[(1, n)],
                          bytes=os.path.getsize(output), seconds=seconds, order=order,
                          unstored=sorted(splats.extras), format=fmt, source_count=source_count, kept=kept,
                          psnr=None if rate is None else rate["stats"]["mean"], rate=rate)


def _file_bytes(splats: Splats, fmt: str, options: CompressOptions, profile, settings, fixed: dict,
                target: RateTarget, cameras, reference: torch.Tensor, device, quiet: bool) -> tuple[bytes, dict]:
    """``(the file's bytes, its rate report)``: ``splats`` (in file order) as a ``fmt`` file held to ``target``
    against ``reference`` ((C, H, W, 3) renders of the whole scene from ``cameras``): the profile's ladder search
    for a format with one, else the writer's one file, decoded and rendered to say whether it reaches it."""
    if profile is not None:
        rate = _search_format(profile, splats, None, target, fixed, options, device, quiet, cameras, reference)
        return next(iter(rate.files.values())), _rate_report(rate)
    with tempfile.TemporaryDirectory(prefix="sog-probe-") as folder:
        path = Path(folder) / f"probe{WRITERS[fmt].endings[0]}"
        get_writer(fmt)(splats, path, **options.format_options)
        data = path.read_bytes()
        stats = ViewStats.of(view_psnrs(render(load(path), cameras, device=device), reference))
    return data, {"target": target.as_dict(), "stats": stats.as_dict(), "level": None, "reached": target.met(stats),
                  "settings": {}, "tried": []}


#: formats whose writer's settings a `Profile` carries for ``--quality`` and ``--psnr`` (`sog.codec.spz_profile`)
FORMAT_PROFILES = {"spz": SPZ_PROFILE}


def _search_format(profile, splats: Splats, source_path, target: RateTarget, fixed: dict, options: CompressOptions,
                   device, quiet: bool, cameras=None, reference: torch.Tensor | None = None):
    """The `RateResult` of ``profile``'s ladder for ``splats`` (in file order, one layer) against ``target`` on the
    search cameras (or ``cameras``, judged against ``reference`` renders of another scene: the whole one of a count
    search): the ladder's binary search and nothing finer (its settings are whole lattice steps)."""
    if cameras is None:
        cameras = search_cameras(splats, source_path, options.search_views, options.search_size)
    n = len(splats)
    with one_cpu_thread(device), tqdm(total=None, desc=f"encode to {target}", unit="probe",
                                      disable=quiet, leave=False) as bar:
        # the bytes chosen on are the one file written (not a SOG container of it: no meta.json, no zip headers)
        return RateSearch(profile, profile.ladder, [Layer(splats, n, 1)], target, fixed, cameras, device,
                          progress=lambda name: bar.update(1), refine_rounds=0, reference=reference,
                          size=lambda meta, files: sum(len(data) for data in files.values())).run()


def _write_bytes(output, data: bytes, overwrite: bool) -> None:
    from .io.atomic import atomic_path
    with atomic_path(output, overwrite) as tmp:
        tmp.write_bytes(data)


def _compress_to_lod(source, output, options: CompressOptions, overwrite: bool) -> CompressResult:
    """`compress` to streamed SOG (`sog.io.lod_writer`): level k is level k-1 halved by `sog.reduce` (on tuning
    views), and each spatial chunk of a level is compressed as ``options`` ask to a SOG folder."""
    from .io.lod_writer import check_lod_destination, check_lod_options, level_counts, write_lod
    from .reduce.lod_error import level_errors

    lod = check_lod_options(options.format_options)
    check_lod_destination(output, [] if isinstance(source, Splats) else [source], overwrite)  # before any work
    device = resolve_device(options.device)
    seconds: dict[str, float] = {}
    with one_cpu_thread(device):  # the same choice for any core count
        splats, source_path, source_count, kept = _scene(source, options, device, seconds)
        t0 = time.perf_counter()
        levels = [splats]
        for k, keep in enumerate(level_counts(len(splats), lod.pop("levels"))[1:], 1):
            cameras = tuning_cameras(levels[-1], source_path, views=REDUCE_VIEWS, size=REDUCE_SIZE)
            levels.append(levels[-1] if keep >= len(levels[-1]) else
                          reduce(levels[-1], keep, cameras, seed=options.seed + k, device=device).splats)
        seconds["levels"] = time.perf_counter() - t0
    chunk = replace(options, format="sog-folder", bundle=None, format_options={}, reduce=None, max_gaussians=None,
                    layout=None)
    t0 = time.perf_counter()
    def measure(parts, lo, hi):
        with one_cpu_thread(device):
            return level_errors(parts, lo, hi)

    written = write_lod(levels, output, lambda part, path: compress(part, path, chunk, overwrite=overwrite,
                                                                   quiet=True), overwrite=overwrite, measure=measure,
                        **lod)
    seconds["chunks"] = time.perf_counter() - t0
    n = len(splats)
    return CompressResult(count=n, sh_degree=splats.sh_degree, grid=(1, n), layers=[(1, n)], bytes=written.bytes,
                          seconds=seconds, order=written.order, unstored=sorted(splats.extras), format="lod",
                          source_count=source_count, kept=kept)


def stream_order(splats: Splats, sort: str = "morton") -> torch.Tensor:
    """(N,) long: the order a format without a grid stores the Gaussians in. Its entropy coder (gzip, zstd) and
    chunk bounds gain from neighbours in the file being neighbours in space, so every sorter but ``"none"`` (the
    input order) means the 3D Morton order of the positions here: the grid sorters' row-major order jumps across
    the scene at every row's end."""
    if sort == "none":
        return torch.arange(len(splats))
    return torch.from_numpy(np.argsort(morton3(splats.means.detach().cpu().numpy()), kind="stable"))


def _spread3(v: np.ndarray) -> np.ndarray:
    """(N,) uint64 of 21-bit values -> each bit i moved to bit 3i (the standard magic-number interleave)."""
    v = v & np.uint64(0x1FFFFF)
    for shift, mask in ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def morton3(points: np.ndarray) -> np.ndarray:
    """(N,) uint64 Z-order codes of ``points`` (N, 3), each axis quantised to 21 bits over the bounding box (the
    order of `sog.sort.morton`, computed with five mask steps per axis instead of one per bit)."""
    p = np.asarray(points, np.float64)
    lo, hi = p.min(0), p.max(0)
    q = ((p - lo) / np.where(hi > lo, hi - lo, 1.0) * ((1 << 21) - 1)).astype(np.uint64)
    return _spread3(q[:, 0]) | (_spread3(q[:, 1]) << np.uint64(1)) | (_spread3(q[:, 2]) << np.uint64(2))


def decompress(source: str | os.PathLike, output: str | os.PathLike | None = None, *,
               overwrite: bool = False) -> Splats:
    """Decode a ``.sog`` (zip, folder or meta.json) to `Splats`; also write a PLY when ``output`` is given."""
    if output is not None:
        check_destination(output, [source], overwrite)
    splats = load(source)
    if output is not None:
        write_ply(splats, output, overwrite=overwrite)
    return splats


@dataclass
class ConvertResult:
    count: int
    format: str      #: the name in `sog.io.WRITERS` written
    bytes: int
    #: "copied" (the same format: the bytes as they are), "repackaged" (SOG zip <-> folder: the same planes),
    #: "encoded" (a SOG from another format: the default profile, as `compress`), or "written" (decoded, then
    #: written by the target's writer)
    how: str


def convert(source: str | os.PathLike, output: str | os.PathLike, *, format: str | None = None,
            overwrite: bool = False, quiet: bool = True) -> ConvertResult:
    """Any scene sog reads to any format it writes (`sog.io.WRITERS`, chosen by ``output``'s extension or
    ``format``), changing no more than the target needs: the same format is copied, a SOG zip and folder swap
    containers with the planes untouched, a SOG from another format is encoded as `compress` does by default, and
    anything else is decoded and written with the target's own quantisation (in Morton order for a compressed PLY,
    whose chunk bounds need neighbours together; in the input's order otherwise)."""
    from .io import detect_format
    from .io.container import named_files
    from .io.atomic import PLANE_SUFFIXES, atomic_path

    fmt = output_format(output, format)
    check_destination(output, [source], overwrite)
    kind = detect_format(source)
    sog_target = WRITERS[fmt].function is None
    if kind == fmt and kind in ("spz", "glb"):
        splats = load(source)  # only a file sog reads is copied
        data = open(source, "rb").read()
        with atomic_path(output, overwrite) as tmp:
            tmp.write_bytes(data)
        return ConvertResult(len(splats), fmt, len(data), "copied")
    if sog_target and kind == "sog" and fmt != "lod":  # a SOG's planes as they are: not into chunks
        splats = load(source)
        meta, read, _ = read_container(source)
        files = {name: read(name) for name in named_files(meta) if name.lower().endswith(PLANE_SUFFIXES)}
        size = write_container(meta, files, output, bundle=fmt == "sog", overwrite=overwrite,
                               compress_meta=meta.get("profile") == "sog")
        return ConvertResult(len(splats), fmt, size, "repackaged")
    if sog_target:
        result = compress(source, output, CompressOptions(format=fmt), overwrite=overwrite, quiet=quiet)
        return ConvertResult(result.count, fmt, result.bytes, "encoded")
    splats = load(source)
    if fmt == "compressed-ply":
        splats = splats.permute(stream_order(splats))
    get_writer(fmt)(splats, output, overwrite=overwrite)
    return ConvertResult(len(splats), fmt, os.path.getsize(output), "written")


def container_bytes(path: str | os.PathLike) -> int:
    return read_container(path)[2]
