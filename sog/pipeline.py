"""The whole job in two functions: `compress` (load → reduce → sort → encode → write) and `decompress`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .codec import DEFAULT_PROFILE, Layer, get_profile
from .device import one_cpu_thread, resolve_device
from .errors import SogError
from .grid import grid_shape
from .reduce import REDUCE_SIZE, REDUCE_VIEWS, check_reduce_options, reduce, target_count
from .render.views import importance_views, search_cameras, tuning_cameras
from .io import load, read_container, write_container, write_ply
from .io.atomic import check_destination
from .io.limits import check_magnitudes
from .sort import sort_grid
from .sort.features import splat_features
from .splats import Splats


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
    bundle: bool | None = None          #: None: zip for a .sog path, folder otherwise
    sort_weights: dict[str, float] = field(default_factory=dict)  #: features to sort on (sort.features)
    sort_options: dict = field(default_factory=dict)  #: options of the sorter (see its config dataclass)
    #: work budget of ShuffleSoftSort in runs per grid (None: until it converges); the same bytes on any machine
    sort_budget: int | None = SORT_BUDGET
    #: opt-in wall-clock cap of ShuffleSoftSort per compress (the bytes then depend on the machine)
    sort_seconds: float | None = None
    profile_options: dict = field(default_factory=dict)
    quality: str | None = None          #: the profile's preset (`Profile.presets`; native "small" is a PSNR target)
    target_psnr: float | None = None    #: the smallest file whose renders reach this PSNR (`Profile.encode_to_psnr`)
    #: reuse an earlier result's split and sort (`CompressResult.layout`) of the same scene: no importance, no sort
    layout: list[tuple[torch.Tensor, dict[str, float]]] | None = None
    #: the share of Gaussians to remove (0 <= f < 1, `sog.reduce`); None with ``max_gaussians`` None: keep all
    reduce: float | None = None
    #: keep at most this many Gaussians (`sog.reduce`); not with ``reduce``
    max_gaussians: int | None = None


@dataclass
class CompressResult:
    count: int
    sh_degree: int
    grid: tuple[int, int]                #: (H, W) of the (first) grid
    bytes: int
    seconds: dict[str, float]
    order: torch.Tensor  #: (N,) long: the input index of the i-th Gaussian of the file (layer by layer)
    layers: list[tuple[int, int]] = field(default_factory=list)  #: (H, W) grid of each importance layer
    unstored: list[str] = field(default_factory=list)  #: extra PLY properties the .sog cannot hold
    #: with ``target_psnr``: the PSNR measured for the written file, on the search's tuning cameras
    #: (`sog.render.views.search_cameras`), not `sog eval`'s judging views
    psnr: float | None = None
    #: with ``target_psnr`` (or ``quality="small"``): target, level and settings chosen, whether the target was
    #: reached, every probe
    rate: dict | None = None
    #: per layer: the input indices in grid order (N_k,) and the drops (`CompressOptions.layout` reuses it)
    layout: list[tuple[torch.Tensor, dict[str, float]]] = field(default_factory=list)
    #: the Gaussians of the input (``count`` is what the file holds: fewer after a reduction)
    source_count: int | None = None
    #: after a reduction: (count,) long, the input index of each kept Gaussian (``order`` and ``layout`` then
    #: index the reduced scene); None without one
    kept: torch.Tensor | None = None


def compress(source: Splats | str | os.PathLike, output: str | os.PathLike, options: CompressOptions | None = None,
             *, overwrite: bool = False, quiet: bool = False) -> CompressResult:
    """Sort ``source`` onto a grid and write it as a ``.sog`` (zip) or a SOG folder."""
    options = options or CompressOptions()
    profile = get_profile(options.profile)
    if options.target_psnr is not None and not 0 < options.target_psnr < 1000:  # also catches NaN
        raise SogError(f"--psnr must be a positive number of dB, not {options.target_psnr}")
    check_reduce_options(options.reduce, options.max_gaussians)
    overrides = {"effort": options.effort, "seed": options.seed, **options.profile_options}
    profile_options, fixed, target_psnr = profile.options(options.quality, options.target_psnr, overrides)
    check_destination(output, [] if isinstance(source, Splats) else [source], overwrite)  # before any work
    device = resolve_device(options.device)  # fail before any work on a bad --device
    with one_cpu_thread(device):  # the same bytes for any core count
        return _compress(source, output, options, profile, profile_options, fixed, target_psnr, device,
                         overwrite, quiet)


def _compress(source, output, options: CompressOptions, profile, profile_options, fixed, target_psnr, device,
              overwrite: bool, quiet: bool) -> CompressResult:
    """`compress` once its options are checked: load, plan, sort, encode, write."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    splats = load(source) if not isinstance(source, Splats) else check_magnitudes(source.validate(), "scene")
    seconds["load"] = time.perf_counter() - t0
    source_path = None if isinstance(source, Splats) else source
    source_count = len(splats)
    reducing = options.reduce is not None or options.max_gaussians is not None
    kept = None
    if reducing:  # only when asked: the default keeps every Gaussian
        t0 = time.perf_counter()
        keep = target_count(source_count, options.reduce, options.max_gaussians)
        cameras = tuning_cameras(splats, source_path, views=REDUCE_VIEWS, size=REDUCE_SIZE)
        reduction = reduce(splats, keep, cameras, seed=options.seed, device=device)
        splats, kept = reduction.splats, reduction.kept
        seconds["reduce"] = time.perf_counter() - t0

    # importance layers, when the profile stores them (the Gaussians that make little of the pictures go coarser)
    n = len(splats)
    groups = [(torch.arange(n), {})]
    if options.layout is not None:
        _check_layout(options.layout, n, profile)
    elif profile.wants_layers(n, profile_options):
        t0 = time.perf_counter()
        groups = profile.plan_layers(splats, profile_options, importance_views(splats, source_path), device,
                                     options.seed)
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
    if target_psnr is None and not isinstance(source, Splats):
        del splats  # the layers hold every Gaussian (in grid order); the unsorted copy would only add N to the peak

    t0 = time.perf_counter()
    rate = None
    if target_psnr is not None:
        cameras = search_cameras(splats, source_path)
        with tqdm(total=None, desc=f"encode to {target_psnr:g} dB", unit="probe", disable=quiet,
                  leave=False) as bar:
            rate = profile.encode_to_psnr(layers, target_psnr, fixed, cameras, device,
                                          progress=lambda name: bar.update(1))
        meta, files = rate.meta, rate.files
    else:
        with tqdm(total=None, desc="encode", unit="plane", disable=quiet, leave=False) as bar:
            meta, files = profile.encode(layers, profile_options, progress=lambda name: bar.update(1))
    seconds["encode"] = time.perf_counter() - t0
    if reducing:  # the count it came from, in a key SOG v2 readers ignore
        meta = {**meta, "sog": {"source_count": source_count}}
    t0 = time.perf_counter()
    size = write_container(meta, files, output, bundle=options.bundle, overwrite=overwrite,
                           compress_meta=profile.compress_meta)
    seconds["write"] = time.perf_counter() - t0
    return CompressResult(count=n, sh_degree=sh_degree, grid=(layers[0].height, layers[0].width),
                          layers=[(layer.height, layer.width) for layer in layers], bytes=size, seconds=seconds,
                          order=order, unstored=unstored,
                          layout=[(torch.as_tensor(index), layer.drops) for (index, _), layer in zip(layout, layers)],
                          psnr=None if rate is None else rate.psnr, source_count=source_count, kept=kept,
                          rate=None if rate is None else {"target": target_psnr, "level": rate.level,
                                                          "reached": rate.reached,
                                                          "settings": rate.settings, "tried": rate.tried})


def _grid_order(splats: Splats, index: torch.Tensor, options: CompressOptions, device, quiet: bool,
                shape: tuple[int, int] | None = None) -> torch.Tensor:
    """The Gaussians ``index`` (n_k,) of ``splats`` sorted onto their grid (``shape`` (H, W); default
    `grid_shape`): their input indices in grid order. ShuffleSoftSort sorts for the codec's bytes (objective
    "codec") with ``sort_budget`` runs on every grid (a run costs in proportion to the grid's size); an optional
    time cap is shared out by size."""
    whole = len(index) == len(splats) and torch.equal(torch.as_tensor(index), torch.arange(len(splats)))
    part = splats if whole else splats.permute(index)  # one grid of all: no copy of the scene for its features
    sort_options = dict(options.sort_options)
    if options.sort == "shufflesoftsort":
        sort_options.setdefault("objective", "codec")
        sort_options.setdefault("budget", options.sort_budget)
        if options.sort_seconds is not None:
            sort_options.setdefault("max_seconds", options.sort_seconds * len(part) / len(splats))
    perm = sort_grid(splat_features(part, options.sort_weights), shape or grid_shape(len(part)), options.sort,
                     seed=options.seed, device=device, progress=not quiet, **sort_options)
    return index[perm[:len(part)]]


def _check_layout(layout, n: int, profile) -> None:
    """A reused layout must hold every Gaussian exactly once (its indices a permutation of 0..n-1)."""
    every = torch.cat([torch.as_tensor(index) for index, _ in layout]) if layout else torch.zeros(0, dtype=torch.long)
    if len(every) != n or not torch.equal(torch.sort(every).values, torch.arange(n)):
        raise SogError(f"layout does not hold each of the {n} Gaussians exactly once")
    most = profile.max_layers()
    if most is not None and len(layout) > most:
        raise SogError(f"the {profile.name} profile stores {'one grid' if most == 1 else f'{most} layers'}; "
                       f"the layout has {len(layout)} layers")


def decompress(source: str | os.PathLike, output: str | os.PathLike | None = None, *,
               overwrite: bool = False) -> Splats:
    """Decode a ``.sog`` (zip, folder or meta.json) to `Splats`; also write a PLY when ``output`` is given."""
    if output is not None:
        check_destination(output, [source], overwrite)
    splats = load(source)
    if output is not None:
        write_ply(splats, output, overwrite=overwrite)
    return splats


def container_bytes(path: str | os.PathLike) -> int:
    return read_container(path)[2]
