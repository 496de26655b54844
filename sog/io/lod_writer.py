"""Write PlayCanvas's streamed SOG (``lod-meta.json`` version 1, `sog.io.lod_format`): the scene's levels of detail
cut into spatial chunks, each chunk an unbundled SOG folder, and the tree over them written last.

The caller makes the levels (`sog.pipeline` halves the scene with `sog.reduce` for each) and encodes a chunk
(``encode(splats, path)``, a SOG folder at ``path``): this module only partitions and writes. The partition is a
k-d tree over level 0's centres: a node splits at the median of its widest axis while it holds more than
``chunk_gaussians`` of level 0's Gaussians, or is wider than ``chunk_extent`` and holds more than ``chunk_min``
(splat-transform's defaults: 512 Ki Gaussians, 16 units, 8 Ki). Every level's Gaussians fall into the leaves by the
same split planes, so a leaf's chunks of all levels cover one region. Each chunk is written atomically, and
``lod-meta.json`` only once every chunk is in: a run that fails leaves no tree."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import SogError
from ..splats import Splats, quat_to_rotmat
from ..version import __version__
from .atomic import atomic_path, check_destination, check_not_input, is_sog_folder
from .limits import LIMITS, parse_json
from .lod_format import (ASSET, BOUND, CHILDREN, COUNT, COUNTS, ERRORS, FILE, FILENAMES, LOD_ERRORS, LOD_LEVELS, LODS,
                         MAX, MIN, OFFSET, TREE, VERSION, VERSION_KEY, chunk_name)

#: ``measure(parts, lo, hi)``: one leaf's error per level (``parts[k]`` its Gaussians of level k, a `Splats`, maybe
#: empty; ``lo``, ``hi`` (3,) its bound), as `sog.reduce.lod_error.level_errors` measures it
Measure = Callable[[list[Splats], np.ndarray, np.ndarray], list[float]]

DEFAULT_LEVELS = 3          #: levels written without ``--lod``: the scene, a half and a quarter of it
MAX_LEVELS = 20             #: level 19 holds a millionth of level 0
CHUNK_GAUSSIANS = 512 * 1024
CHUNK_EXTENT = 16.0
CHUNK_MIN = 8 * 1024


def check_levels(value: Any) -> int:
    """``--lod LEVELS`` as an int 1..`MAX_LEVELS` (a string from the command line, or an int), else a `SogError`."""
    try:
        levels = int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    except ValueError:
        levels = None
    if levels is None or not 1 <= levels <= MAX_LEVELS:
        raise SogError(f"--lod must be a whole number of levels 1..{MAX_LEVELS}, not {str(value)[:40]!r}")
    return levels


def check_lod_options(options: dict) -> dict:
    """The writer's options (``levels``, ``chunk_gaussians``, ``chunk_extent``, ``chunk_min``) with defaults, checked
    before any work."""
    unknown = sorted(set(options) - {"levels", "chunk_gaussians", "chunk_extent", "chunk_min"})
    if unknown:
        raise SogError(f"the lod-meta.json writer has no option {unknown[0]!r}")
    out = {"levels": check_levels(options.get("levels", DEFAULT_LEVELS)),
           "chunk_gaussians": options.get("chunk_gaussians", CHUNK_GAUSSIANS),
           "chunk_extent": float(options.get("chunk_extent", CHUNK_EXTENT)),
           "chunk_min": options.get("chunk_min", CHUNK_MIN)}
    for key in ("chunk_gaussians", "chunk_min"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise SogError(f"{key} must be a whole number of Gaussians, 1 or more, not {out[key]!r}")
    if not out["chunk_extent"] > 0:
        raise SogError(f"chunk_extent must be a positive length, not {out['chunk_extent']}")
    return out


def check_lod_destination(output: str | os.PathLike, inputs, overwrite: bool) -> None:
    """Before any work: ``output`` (``OUT/lod-meta.json``) may be written; ``OUT`` may be new (its parent must
    exist) and is then made by `write_lod`."""
    folder = Path(output).parent
    if folder.exists() or folder.is_symlink():
        check_destination(output, inputs, overwrite)
    elif not folder.parent.is_dir():
        raise SogError(f"output folder {folder.parent} does not exist")
    else:
        check_not_input(output, inputs)


def level_counts(n: int, levels: int) -> list[int]:
    """The Gaussians of each level: level k holds ceil(n / 2^k)."""
    return [max(1, math.ceil(n / 2 ** k)) for k in range(levels)]


@dataclass
class Leaf:
    """One region: per level, the (n_k,) indices into that level of its Gaussians."""

    members: list[np.ndarray]


def partition(points: list[np.ndarray], chunk_gaussians: int, chunk_extent: float, chunk_min: int) -> dict:
    """A k-d tree over ``points`` (per level a (N_k, 3) array; the splits follow level 0's), each node
    ``{"children": [left, right]}`` or ``{"leaf": Leaf}``, children in file order (lower side first)."""
    root: dict = {}
    stack = [(root, [np.arange(len(p)) for p in points])]
    while stack:
        node, members = stack.pop()
        here = points[0][members[0]]
        split = None
        if len(here):
            lo, hi = here.min(0).astype(np.float64), here.max(0).astype(np.float64)  # exact for float32
            widest = float((hi - lo).max())
            if len(here) > chunk_gaussians or (widest > chunk_extent and len(here) > chunk_min):
                axis = int(np.argmax(hi - lo))
                value = float(np.sort(here[:, axis], kind="stable")[len(here) // 2])
                left = here[:, axis] < value
                if left.any() and not left.all():
                    split = axis, value
        if split is None:
            node["leaf"] = Leaf(members)
            continue
        axis, value = split
        sides = [[m[points[k][m, axis] < value] for k, m in enumerate(members)],
                 [m[points[k][m, axis] >= value] for k, m in enumerate(members)]]
        node["children"] = [{}, {}]
        stack.extend(zip(reversed(node["children"]), reversed(sides)))
    return root


def leaves(tree: dict) -> list[Leaf]:
    """The leaves of ``tree`` in pre-order, children first to last (the order `sog.io.lod` reads the ranges in)."""
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if "leaf" in node:
            out.append(node["leaf"])
        else:
            stack.extend(reversed(node["children"]))
    return out


def bounds(splats: Splats) -> tuple[np.ndarray, np.ndarray]:
    """(3,), (3,) float64 corners of the box holding every Gaussian's 1-sigma ellipsoid."""
    rot = quat_to_rotmat(splats.quats.detach().double().cpu())            # (N, 3, 3)
    half = (rot.abs() * torch.exp(splats.scales.detach().double().cpu())[:, None, :]).sum(-1)  # (N, 3)
    means = splats.means.detach().double().cpu()
    return (means - half).min(0).values.numpy(), (means + half).max(0).values.numpy()


@dataclass
class LodWritten:
    bytes: int                 #: every chunk and the tree
    counts: list[int]          #: the Gaussians of each level
    files: int                 #: chunk folders written
    order: torch.Tensor        #: (N_0,) long: the level-0 index of each Gaussian level 0 reads back, in tree order


def write_lod(levels: list[Splats], output: str | os.PathLike, encode: Callable[[Splats, Path], Any], *,
              overwrite: bool = False, chunk_gaussians: int = CHUNK_GAUSSIANS, chunk_extent: float = CHUNK_EXTENT,
              chunk_min: int = CHUNK_MIN, generator: str | None = None, measure: Measure | None = None) -> LodWritten:
    """Write ``levels`` (level 0 first) as ``output`` (``.../lod-meta.json``) and its chunk folders beside it.

    ``encode(chunk, path)`` writes one chunk (a `Splats`) as the SOG folder ``path`` (``.../meta.json``) and returns
    an object with ``bytes`` and ``order`` ((n,) long: the chunk's index of each Gaussian in file order), as
    `sog.pipeline.compress` does. With ``measure`` (`Measure`) every leaf carries its errors per level and the
    header ``lodErrors``."""
    output = Path(output)
    folder = output.parent
    tree = partition([s.means.detach().double().cpu().numpy() for s in levels], chunk_gaussians, chunk_extent,
                     chunk_min)
    filenames: list[str] = []
    chunks: list[tuple[int, Leaf, int]] = []       # (level, leaf, file index)
    made = [0] * len(levels)
    for leaf in leaves(tree):
        for k, m in enumerate(leaf.members):
            if len(m):
                chunks.append((k, leaf, len(filenames)))
                filenames.append(chunk_name(k, made[k]))
                made[k] += 1
    prepare_folder(folder, filenames, overwrite)
    total, ranges, orders = 0, {}, []
    for k, leaf, file in chunks:
        part = levels[k].permute(torch.from_numpy(leaf.members[k]))
        written = encode(part, folder / filenames[file])
        total += int(written.bytes)
        ranges[(id(leaf), k)] = {FILE: file, OFFSET: 0, COUNT: len(part)}
        if k == 0:
            orders.append(torch.from_numpy(leaf.members[0])[torch.as_tensor(written.order)])
    counts = [len(s) for s in levels]

    def leaf_json(leaf: Leaf):
        parts = [levels[k].permute(torch.from_numpy(m)) for k, m in enumerate(leaf.members)]
        boxes = [bounds(part) for part in parts if len(part)]
        lo, hi = np.min([b[0] for b in boxes], 0), np.max([b[1] for b in boxes], 0)
        return (lo, hi, {str(k): ranges[(id(leaf), k)] for k, m in enumerate(leaf.members) if len(m)},
                None if measure is None else measure(parts, lo, hi))

    data = finish_lod(output, filenames, json_tree(tree, leaf_json), counts, overwrite=overwrite, generator=generator,
                      chunk_gaussians=chunk_gaussians, chunk_extent=chunk_extent, chunk_min=chunk_min,
                      errors=measure is not None)
    return LodWritten(bytes=total + data, counts=counts, files=len(chunks), order=torch.cat(orders))


def prepare_folder(folder: Path, filenames: list[str], overwrite: bool) -> bool:
    """Make the output ``folder`` if it is new, and check, before any work, that no chunk named in ``filenames``
    replaces what it should not. True when the folder was made here (a failed run then removes it whole)."""
    made = not folder.is_dir()
    if made:
        try:
            os.mkdir(folder)
        except OSError as exc:
            raise SogError(f"cannot make output folder {folder} ({exc.strerror or exc})") from None
    for name in filenames:
        if (folder / name).parent.exists():
            check_destination(folder / name, [], overwrite)
    return made


def finish_lod(output: Path, filenames: list[str], tree: dict, counts: list[int], *, overwrite: bool,
               generator: str | None, chunk_gaussians: int, chunk_extent: float, chunk_min: int,
               errors: bool = False) -> int:
    """Write the tree (``tree``: `json_tree`'s nodes; ``errors``: its leaves carry errors) as ``output`` once every
    chunk is in, then remove the chunk folders of an earlier tree that this one does not name; returns the tree's
    bytes."""
    folder = output.parent
    meta = {VERSION_KEY: VERSION,
            ASSET: {"generator": generator or f"sog {__version__}", "chunkGaussians": chunk_gaussians,
                    "chunkExtent": chunk_extent, "chunkMinGaussians": chunk_min},
            COUNT: sum(counts), COUNTS: counts, LOD_LEVELS: len(counts)}
    if errors:
        meta[LOD_ERRORS] = True
    meta.update({FILENAMES: filenames, TREE: tree})
    data = json.dumps(meta, separators=(",", ":")).encode()
    stale = _old_chunks(output, folder) - {(folder / name).parent for name in filenames} if overwrite else set()
    with atomic_path(output, overwrite) as tmp:  # the tree last: readers see every chunk or no tree at all
        tmp.write_bytes(data)
    for chunk in sorted(stale):  # an earlier tree's chunks that the new one does not name (after it is in place)
        shutil.rmtree(chunk, ignore_errors=True)
    return len(data)


def _old_chunks(output: Path, folder: Path) -> set[Path]:
    """The chunk folders that an earlier tree at ``output`` names and sog wrote (SOG folders directly inside
    ``folder``); an empty set when there is none or it cannot be read (then nothing is removed)."""
    try:
        if not output.is_file() or output.is_symlink() or output.stat().st_size > LIMITS.max_lod_json_bytes:
            return set()
        doc = parse_json(output.read_bytes(), str(output), LIMITS.max_lod_json_bytes)
    except (OSError, SogError):
        return set()
    names = doc.get(FILENAMES, []) if isinstance(doc, dict) else []
    found = set()
    for name in names if isinstance(names, list) else []:
        if isinstance(name, str) and name.endswith("/meta.json"):
            chunk = folder / Path(name).parent
            if chunk.parent == folder and not chunk.is_symlink() and is_sog_folder(chunk):
                found.add(chunk)
    return found


def json_tree(tree: dict, leaf_json: Callable[[Leaf], tuple[np.ndarray, np.ndarray, dict, list[float] | None]]) -> dict:
    """``tree`` as lod-meta.json nodes: each leaf's ``(lo (3,), hi (3,), lods, errors)`` from ``leaf_json`` (its box,
    its range per level, and its errors per level or None), every inner node's bound the union of its children's."""
    out: dict = {}
    stack = [(tree, out, False)]
    while stack:  # post-order without recursion: a node's bound is its children's union
        node, into, done = stack.pop()
        if "leaf" in node:
            lo, hi, lods, errors = leaf_json(node["leaf"])
            into[BOUND] = _bound(lo, hi)
            into[LODS] = lods
            if errors is not None:
                into[ERRORS] = [float(e) for e in errors]
        elif not done:
            into[CHILDREN] = [{}, {}]
            stack.append((node, into, True))
            stack.extend((child, sub, False) for child, sub in zip(node["children"], into[CHILDREN]))
        else:
            kids = into.pop(CHILDREN)  # re-added after the bound: every node lists its bound first
            into[BOUND] = _bound(np.min([c[BOUND][MIN] for c in kids], 0), np.max([c[BOUND][MAX] for c in kids], 0))
            into[CHILDREN] = kids
    return out


def _bound(lo, hi) -> dict:
    """A box as JSON, each corner rounded outwards to float32 (7 significant digits hold it)."""
    down = np.nextafter(np.asarray(lo, np.float32), np.float32(-np.inf))
    up = np.nextafter(np.asarray(hi, np.float32), np.float32(np.inf))
    return {MIN: [float(v) for v in down], MAX: [float(v) for v in up]}
