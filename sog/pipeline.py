"""The whole job in two functions: `compress` (load → sort → encode → write) and `decompress`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .codec import PROFILES
from .device import resolve_device
from .errors import SogError
from .grid import grid_shape
from .io import load, read_container, write_container, write_ply
from .sort import sort_grid
from .sort.features import splat_features
from .splats import Splats


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
    sort_seconds: float | None = 180.0  #: time budget of ShuffleSoftSort (None: until it converges)
    profile_options: dict = field(default_factory=dict)
    quality: str | None = None          #: native-profile preset (sog.codec.native.PRESETS); sets effort too
    target_psnr: float | None = None    #: native only: the coarsest bit depths whose renders reach this PSNR (sog.rate)


@dataclass
class CompressResult:
    count: int
    sh_degree: int
    grid: tuple[int, int]
    bytes: int
    seconds: dict[str, float]
    order: torch.Tensor  #: (N,) long: the input index of the Gaussian at texel i
    unstored: list[str] = field(default_factory=list)  #: extra PLY properties the .sog cannot hold
    psnr: float | None = None  #: with ``target_psnr``: the PSNR measured for the written file (sog eval's cameras)
    rate: dict | None = None   #: with ``target_psnr``: level chosen, whether the target was reached, every probe


def compress(source: Splats | str | os.PathLike, output: str | os.PathLike, options: CompressOptions | None = None,
             *, overwrite: bool = False, quiet: bool = False) -> CompressResult:
    """Sort ``source`` onto a grid and write it as a ``.sog`` (zip) or a SOG folder."""
    options = options or CompressOptions()
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
    shape = grid_shape(n)
    t0 = time.perf_counter()
    features = splat_features(splats, options.sort_weights)
    sort_options = dict(options.sort_options)
    if options.sort == "shufflesoftsort" and options.sort_seconds is not None:
        sort_options.setdefault("max_seconds", options.sort_seconds)
    perm = sort_grid(features, shape, options.sort, seed=options.seed, device=device,
                     progress=not quiet, **sort_options)
    ordered = splats.permute(perm[:n])
    seconds["sort"] = time.perf_counter() - t0

    t0 = time.perf_counter()
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
    rate = None
    if options.target_psnr is not None:
        from .rate import encode_to_psnr
        with tqdm(total=None, desc=f"encode to {options.target_psnr:g} dB", unit="probe", disable=quiet,
                  leave=False) as bar:
            rate = encode_to_psnr(ordered, shape[1], shape[0], options.target_psnr, extra,
                                  source_path=None if isinstance(source, Splats) else source, device=device,
                                  progress=lambda name: bar.update(1))
        meta, files = rate.meta, rate.files
    else:
        with tqdm(total=None, desc="encode", unit="plane", disable=quiet, leave=False) as bar:
            meta, files = profile.encode(ordered, shape[1], shape[0], profile.Options(**extra),
                                         progress=lambda name: bar.update(1))
    seconds["encode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    size = write_container(meta, files, output, bundle=options.bundle, overwrite=overwrite,
                           compress_meta=profile.COMPRESS_META)
    seconds["write"] = time.perf_counter() - t0
    return CompressResult(count=n, sh_degree=splats.sh_degree, grid=shape, bytes=size, seconds=seconds, order=perm[:n],
                          unstored=sorted(splats.extras), psnr=None if rate is None else rate.psnr,
                          rate=None if rate is None else {"level": rate.level, "reached": rate.reached,
                                                          "tried": rate.tried})


def decompress(source: str | os.PathLike, output: str | os.PathLike | None = None, *,
               overwrite: bool = False) -> Splats:
    """Decode a ``.sog`` (zip, folder or meta.json) to `Splats`; also write a PLY when ``output`` is given."""
    splats = load(source)
    if output is not None:
        write_ply(splats, output, overwrite=overwrite)
    return splats


def container_bytes(path: str | os.PathLike) -> int:
    return read_container(path)[2]
