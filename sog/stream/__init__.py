"""Out-of-core compression to streamed SOG (``lod-meta.json``): memory bounded by the chunk size, not the scene.

`compress_chunked` reads a binary INRIA PLY through `sog.io.ply_memmap` in three steps:

1. **split**: one streaming pass copies out only the centres (N, 3) float32, and `sog.io.lod_writer.partition`
   cuts them into leaves of at most ``chunk_gaussians`` (the k-d tree of the in-memory writer, on level 0);
2. **chunks**: each leaf is one `ChunkTask`, run by `run_chunk`: its rows gathered from the memory map, its
   coarser levels made from it by `sog.reduce` (level k is level k-1 halved), each level sorted and encoded as
   the default compress does and written atomically as the unbundled SOG folder ``{k}_{leaf}``, then freed (the
   leaf's error per level, `sog.reduce.lod_error`, measured first);
3. **tree**: ``lod-meta.json`` written last, from the chunks' counts and boxes.

The chunks are independent: ``run`` maps `run_chunk` over the tasks (default: one after another here;
`sog.distributed` runs them on Dask). A chunk's work is seeded from the seed and its leaf number only, and its
results are gathered by leaf number, so any runner, worker count or retry writes the same bytes. A scene that fits
one chunk gets the same bytes as `sog.pipeline.compress` writes for it in memory (leaf 0's seed is the seed).
A run that fails leaves no tree, and removes the chunk folders it wrote."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import one_cpu_thread, resolve_device
from ..errors import SogError
from ..io.lod_format import COUNT, FILE, OFFSET, chunk_name
from ..io.lod_writer import (bounds, check_lod_destination, check_lod_options, finish_lod, json_tree, leaves,
                             level_counts, partition, prepare_folder)
from ..io.ply_memmap import PlyMemmap, memmappable
from ..pipeline import CompressOptions, CompressResult, compress
from ..reduce import REDUCE_SIZE, REDUCE_VIEWS, reduce
from ..reduce.lod_error import level_errors
from ..render.views import tuning_cameras

#: leaf ``c``'s work is seeded with ``seed + SEED_STRIDE * c`` (its level k's reduction with that plus k): leaf 0
#: takes the seed itself, as the in-memory writer does
SEED_STRIDE = 1_000_003

#: ``run(function, tasks, progress)``: the results of ``function`` on each task, in the tasks' order
Runner = Callable[[Callable, Sequence, Callable[[], None]], list]


@dataclass(frozen=True)
class ChunkTask:
    """One leaf's work: the rows ``index`` ((n,) int64, ascending) of the PLY ``source``, compressed with
    ``options`` (its seed already this leaf's) into ``levels`` SOG folders ``folder / names[k]``."""

    leaf: int
    source: str
    index: np.ndarray
    folder: str
    names: tuple[str, ...]
    options: CompressOptions


@dataclass
class ChunkDone:
    """What a chunk wrote: per level its count, box ((3,), (3,) float64 corners) and error (`sog.reduce.lod_error`),
    the bytes, and the leaf's level-0 rows in file order ((n,) int64: the PLY row of each Gaussian level 0 reads
    back)."""

    leaf: int
    counts: list[int]
    boxes: list[tuple[np.ndarray, np.ndarray]]
    errors: list[float]
    bytes: int
    order: np.ndarray
    seconds: float


def run_chunk(task: ChunkTask) -> ChunkDone:
    """Load, reduce, sort, encode and write one leaf's levels (`ChunkTask`), on one CPU thread; memory is the
    chunk's. Re-running it (a retried task) writes the same bytes over what it wrote."""
    t0 = time.perf_counter()
    options = task.options
    device = resolve_device(options.device)
    with one_cpu_thread(device):
        part = PlyMemmap(task.source).rows(task.index)
        levels = [part]
        for k, keep in enumerate(level_counts(len(part), len(task.names))[1:], 1):
            cameras = tuning_cameras(levels[-1], task.source, views=REDUCE_VIEWS, size=REDUCE_SIZE)
            levels.append(levels[-1] if keep >= len(levels[-1]) else
                          reduce(levels[-1], keep, cameras, seed=options.seed + k, device=device).splats)
        boxes = [bounds(level) for level in levels]
        errors = level_errors(levels, np.min([b[0] for b in boxes], 0), np.max([b[1] for b in boxes], 0))
    counts, total, order = [], 0, None
    for k, (level, name) in enumerate(zip(levels, task.names)):
        written = compress(level, Path(task.folder) / name, options, overwrite=True, quiet=True)
        counts.append(len(level))
        total += int(written.bytes)
        if k == 0:
            order = task.index[torch.as_tensor(written.order).numpy()]
    return ChunkDone(task.leaf, counts, boxes, errors, total, order, time.perf_counter() - t0)


def serial(function: Callable, tasks: Sequence, progress: Callable[[], None]) -> list:
    """The default `Runner`: each task here, one after another."""
    out = []
    for task in tasks:
        out.append(function(task))
        progress()
    return out


def chunkable(source, options: CompressOptions) -> bool:
    """True when ``compress_chunked`` can take this job: ``source`` a binary little-endian INRIA PLY file and no
    whole-scene reduction asked for (``--reduce`` and ``--max-gaussians`` rank every Gaussian at once)."""
    return (isinstance(source, (str, os.PathLike)) and options.reduce is None and options.max_gaussians is None
            and memmappable(source))


def split(ply: PlyMemmap, chunk_gaussians: int, chunk_extent: float, chunk_min: int) -> tuple[dict, list]:
    """The k-d tree over ``ply``'s centres (read in one streaming pass, only x, y, z) and its leaves in file order,
    each leaf's ``members[0]`` its (n,) rows; memory: the (N, 3) float32 centres while the tree is built, then the
    leaves' int64 rows."""
    positions = ply.positions()
    tree = partition([positions], chunk_gaussians, chunk_extent, chunk_min)
    del positions
    return tree, leaves(tree)


def check_chunked(source, output, options: CompressOptions, overwrite: bool) -> dict:
    """Every check `compress_chunked` makes before any work (options, destination, device); returns the writer's
    options (`check_lod_options`)."""
    if options.reduce is not None or options.max_gaussians is not None:
        raise SogError("--reduce and --max-gaussians rank the whole scene at once; the chunked streamed-SOG writer "
                       "does not take them")
    if options.finetune is not None:
        raise SogError("--finetune applies to SOG outputs (.sog or a folder), not a streamed lod-meta.json")
    lod = check_lod_options(options.format_options)
    check_lod_destination(output, [source], overwrite)
    resolve_device(options.device)
    return lod


def compress_chunked(source: str | os.PathLike, output: str | os.PathLike, options: CompressOptions | None = None,
                     *, overwrite: bool = False, quiet: bool = False, run: Runner = serial) -> CompressResult:
    """Compress the PLY ``source`` to the streamed SOG ``output`` (``OUT/lod-meta.json``) chunk by chunk (see the
    module docstring); ``options.format_options`` hold the writer's (``levels``, ``chunk_gaussians``, ...)."""
    options = options or CompressOptions()
    lod = check_chunked(source, output, options, overwrite)
    output = Path(output)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    ply = PlyMemmap(source)
    tree, parts = split(ply, lod["chunk_gaussians"], lod["chunk_extent"], lod["chunk_min"])
    seconds["split"] = time.perf_counter() - t0
    levels = lod["levels"]
    names = [tuple(chunk_name(k, leaf) for k in range(levels)) for leaf in range(len(parts))]
    filenames = [name for per_leaf in names for name in per_leaf]
    chunk = replace(options, format="sog-folder", bundle=None, format_options={}, reduce=None, max_gaussians=None,
                    layout=None)
    where, folder = os.path.abspath(source), os.path.abspath(output.parent)  # a worker's working folder may differ
    tasks = [ChunkTask(leaf, where, np.sort(part.members[0]).astype(np.int64), folder, names[leaf],
                       replace(chunk, seed=options.seed + SEED_STRIDE * leaf)) for leaf, part in enumerate(parts)]
    for part in parts:
        part.members = []  # the tasks hold the rows now
    made = prepare_folder(output.parent, filenames, overwrite)
    existed = {name for name in filenames if (output.parent / name).parent.exists()}
    t0 = time.perf_counter()
    try:
        with tqdm(total=len(tasks), desc="chunks", unit="chunk", disable=quiet, leave=False) as bar:
            done = run(run_chunk, tasks, lambda: bar.update(1))
        if [d.leaf for d in done] != list(range(len(tasks))):
            raise SogError("the chunk runner returned its results out of order")
        seconds["chunks"] = time.perf_counter() - t0
        counts = [sum(d.counts[k] for d in done) for k in range(levels)]
        index = {id(part): leaf for leaf, part in enumerate(parts)}

        def leaf_json(part):
            d = done[index[id(part)]]
            lods = {str(k): {FILE: levels * d.leaf + k, OFFSET: 0, COUNT: d.counts[k]} for k in range(levels)}
            return np.min([b[0] for b in d.boxes], 0), np.max([b[1] for b in d.boxes], 0), lods, d.errors

        data = finish_lod(output, filenames, json_tree(tree, leaf_json), counts, overwrite=overwrite, generator=None,
                          errors=True, **{k: lod[k] for k in ("chunk_gaussians", "chunk_extent", "chunk_min")})
    except BaseException:
        _remove_written(output.parent, filenames, existed, made)
        raise
    n = len(ply)
    return CompressResult(count=n, sh_degree=_sh_degree(ply), grid=(1, n), layers=[(1, n)],
                          bytes=sum(d.bytes for d in done) + data, seconds=seconds,
                          order=torch.from_numpy(np.concatenate([d.order for d in done])),
                          unstored=_extras(ply), format="lod", source_count=n, kept=None)


def _sh_degree(ply: PlyMemmap) -> int:
    from ..splats import sh_degree_from_rest

    rest = [name for name in ply.layout.dtype.names if name.startswith("f_rest_")]
    return sh_degree_from_rest(len(rest) // 3)


def _extras(ply: PlyMemmap) -> list[str]:
    from ..io.ply import REQUIRED

    return sorted(name for name in ply.layout.dtype.names if name not in REQUIRED and not name.startswith("f_rest_"))


def _remove_written(folder: Path, filenames: list[str], existed: set[str], made: bool) -> None:
    """After a failed run: the output folder when this run made it, else the chunk folders it wrote (not those that
    were there before: `--force` replaced those atomically, and they are the user's to keep or delete)."""
    if made:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in filenames:
        if name not in existed:
            shutil.rmtree((folder / name).parent, ignore_errors=True)
