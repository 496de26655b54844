"""The whole job in two functions: `compress` (load → sort → encode → write) and `decompress`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .codec import PROFILES
from .codec.native import PRESET_PSNR, Layer, encode_layers
from .device import resolve_device
from .errors import SogError
from .grid import grid_shape
from .render.importance import check_layer_shares, importance_layers, sensitivities
from .render.views import importance_views
from .io import load, read_container, write_container, write_ply
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
    profile: str = "sog"                #: "sog" (native, default) or "playcanvas" (SOG v2)
    sort: str = "shufflesoftsort"
    seed: int = 0
    device: str = "auto"
    effort: int = 4
    bundle: bool | None = None          #: None: zip for a .sog path, folder otherwise
    sort_weights: dict[str, float] = field(default_factory=dict)  #: features to sort on (sort.features)
    sort_options: dict = field(default_factory=dict)  #: options of the sorter (see its config dataclass)
    #: work budget of ShuffleSoftSort in runs per grid (None: until it converges); the same bytes on any machine
    sort_budget: int | None = SORT_BUDGET
    sort_seconds: float | None = None  #: opt-in wall-clock cap of ShuffleSoftSort per compress (the bytes then depend on the machine)
    profile_options: dict = field(default_factory=dict)
    quality: str | None = None          #: native-profile preset (sog.codec.native.PRESETS; "small" is a PSNR target)
    target_psnr: float | None = None    #: native only: the coarsest bit depths whose renders reach this PSNR (sog.rate)
    #: reuse an earlier result's split and sort (`CompressResult.layout`) of the same scene: no importance, no sort
    layout: list[tuple[torch.Tensor, dict[str, float]]] | None = None


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
    psnr: float | None = None  #: with ``target_psnr``: the PSNR measured for the written file (sog eval's cameras)
    #: with ``target_psnr`` (or ``quality="small"``): target, level and settings chosen, whether the target was
    #: reached, every probe
    rate: dict | None = None
    #: per layer: the input indices in grid order (N_k,) and the drops (`CompressOptions.layout` reuses it)
    layout: list[tuple[torch.Tensor, dict[str, float]]] = field(default_factory=list)


def compress(source: Splats | str | os.PathLike, output: str | os.PathLike, options: CompressOptions | None = None,
             *, overwrite: bool = False, quiet: bool = False) -> CompressResult:
    """Sort ``source`` onto a grid and write it as a ``.sog`` (zip) or a SOG folder."""
    options = options or CompressOptions()
    if options.target_psnr is None and options.profile == "sog" and options.quality in PRESET_PSNR:
        options = replace(options, target_psnr=PRESET_PSNR[options.quality])
    if options.profile not in PROFILES:
        raise SogError(f"unknown profile {options.profile!r} (choose from {', '.join(PROFILES)})")
    if options.target_psnr is not None:
        if options.profile != "sog":
            raise SogError("--psnr applies to the native 'sog' profile only")
        if not 0 < options.target_psnr < 1000:  # also catches NaN
            raise SogError(f"--psnr must be a positive number of dB, not {options.target_psnr}")
    device = resolve_device(options.device)  # fail before any work on a bad --device
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    splats = load(source) if not isinstance(source, Splats) else source.validate()
    seconds["load"] = time.perf_counter() - t0

    n = len(splats)
    profile = PROFILES[options.profile]
    extra = dict(options.profile_options)
    if options.quality is not None:
        if options.profile != "sog":
            raise SogError("--quality applies to the native 'sog' profile only")
        from .codec.native import preset_options
        preset = preset_options(options.quality)
        if options.target_psnr is not None:  # the search picks the bit depths; the preset keeps the rest
            from .rate import LEVELS
            preset = {k: v for k, v in preset.items() if k not in LEVELS[0]}
        extra = {**preset, **extra}
    extra = {"effort": options.effort, "seed": options.seed, **extra}
    profile_options = profile.Options(**extra)
    if options.profile == "sog" and profile_options.layers < 1:
        raise SogError(f"layers must be 1 or more, not {profile_options.layers}")
    if getattr(profile_options, "layer_shares", None) is not None:  # before the slow work
        check_layer_shares(profile_options.layer_shares, profile_options.layers)

    # native profile: importance layers (the Gaussians that make little of the pictures are stored coarser)
    groups = [(torch.arange(n), {})]
    if options.layout is not None:
        _check_layout(options.layout, n, options.profile)
    elif options.profile == "sog" and profile_options.layers > 1 and n >= 2 * profile_options.layer_min:
        t0 = time.perf_counter()
        views = importance_views(splats, None if isinstance(source, Splats) else source)
        groups = importance_layers(sensitivities(splats, views, device, seed=options.seed),
                                   profile_options.layers, profile_options.layer_min,
                                   profile_options.layer_max_drop, profile_options.layer_shares)
        seconds["importance"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    layout = options.layout if options.layout is not None else [
        (_grid_order(splats, index, options, device, quiet), drops) for index, drops in groups]
    layers = []
    for index, drops in layout:
        height, width = grid_shape(len(index))
        layers.append(Layer(splats.permute(torch.as_tensor(index)), width, height, dict(drops)))
    order = torch.cat([torch.as_tensor(index) for index, _ in layout])
    seconds["sort"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rate = None
    if options.target_psnr is not None:
        from .rate import encode_to_psnr
        with tqdm(total=None, desc=f"encode to {options.target_psnr:g} dB", unit="probe", disable=quiet,
                  leave=False) as bar:
            rate = encode_to_psnr(layers, options.target_psnr, extra,
                                  source_path=None if isinstance(source, Splats) else source, device=device,
                                  progress=lambda name: bar.update(1))
        meta, files = rate.meta, rate.files
    else:
        with tqdm(total=None, desc="encode", unit="plane", disable=quiet, leave=False) as bar:
            tick = lambda name: bar.update(1)  # noqa: E731
            if options.profile == "sog":
                meta, files = encode_layers(layers, profile_options, progress=tick)
            else:
                meta, files = profile.encode(layers[0].splats, layers[0].width, layers[0].height, profile_options,
                                             progress=tick)
    seconds["encode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    size = write_container(meta, files, output, bundle=options.bundle, overwrite=overwrite,
                           compress_meta=profile.COMPRESS_META)
    seconds["write"] = time.perf_counter() - t0
    return CompressResult(count=n, sh_degree=splats.sh_degree, grid=(layers[0].height, layers[0].width),
                          layers=[(layer.height, layer.width) for layer in layers], bytes=size, seconds=seconds,
                          order=order, unstored=sorted(splats.extras),
                          layout=[(torch.as_tensor(index), layer.drops) for (index, _), layer in zip(layout, layers)],
                          psnr=None if rate is None else rate.psnr,
                          rate=None if rate is None else {"target": options.target_psnr, "level": rate.level,
                                                          "reached": rate.reached,
                                                          "settings": rate.settings, "tried": rate.tried})


def _grid_order(splats: Splats, index: torch.Tensor, options: CompressOptions, device, quiet: bool) -> torch.Tensor:
    """The Gaussians ``index`` (n_k,) of ``splats`` sorted onto their grid: their input indices in grid order.
    ShuffleSoftSort sorts for the codec's bytes (objective "codec") with ``sort_budget`` runs on every grid
    (a run costs in proportion to the grid's size); an optional time cap is shared out by size."""
    part = splats.permute(index)
    sort_options = dict(options.sort_options)
    if options.sort == "shufflesoftsort":
        sort_options.setdefault("objective", "codec")
        sort_options.setdefault("budget", options.sort_budget)
        if options.sort_seconds is not None:
            sort_options.setdefault("max_seconds", options.sort_seconds * len(part) / len(splats))
    perm = sort_grid(splat_features(part, options.sort_weights), grid_shape(len(part)), options.sort,
                     seed=options.seed, device=device, progress=not quiet, **sort_options)
    return index[perm[:len(part)]]


def _check_layout(layout, n: int, profile: str) -> None:
    """A reused layout must hold every Gaussian exactly once (its indices a permutation of 0..n-1)."""
    every = torch.cat([torch.as_tensor(index) for index, _ in layout]) if layout else torch.zeros(0, dtype=torch.long)
    if len(every) != n or not torch.equal(torch.sort(every).values, torch.arange(n)):
        raise SogError(f"layout does not hold each of the {n} Gaussians exactly once")
    if profile != "sog" and len(layout) > 1:
        raise SogError(f"the {profile} profile stores one grid; the layout has {len(layout)} layers")


def decompress(source: str | os.PathLike, output: str | os.PathLike | None = None, *,
               overwrite: bool = False) -> Splats:
    """Decode a ``.sog`` (zip, folder or meta.json) to `Splats`; also write a PLY when ``output`` is given."""
    splats = load(source)
    if output is not None:
        write_ply(splats, output, overwrite=overwrite)
    return splats


def container_bytes(path: str | os.PathLike) -> int:
    return read_container(path)[2]
