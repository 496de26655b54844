"""PlayCanvas streamed SOG (``lod-meta.json``): a tree of nodes, each with ranges of Gaussians per
level of detail, stored in SOG files listed in ``filenames``. Reading gives one level (0 = finest).

The tree is walked without recursion and refused beyond `sog.io.limits.Limits.max_lod_nodes` nodes or
``max_lod_depth`` levels; ``filenames`` must be relative paths inside the lod-meta's folder (no ``..``)
and may not name another ``lod-meta.json`` nor one file twice; the ranges of a level must fit the files they
point into and may not overlap (a level holds each Gaussian once), so the scene read is never larger than the
files it is read from. A leaf's optional ``errors`` (its error per level) must be a short list of finite,
non-negative numbers; sog reads no more of them than that (a level's Gaussians do not depend on them)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ..errors import SogError
from ..splats import Splats
from .limits import LIMITS, Limits, check_int, parse_json
from .lod_format import CHILDREN, COUNT, ERRORS, FILE, FILENAMES, LOD_LEVELS, LODS, META_NAME, OFFSET, TREE

#: a leaf's ``errors`` hold at most this many levels (as many as a tree can name sensibly)
MAX_ERROR_LEVELS = 64


def lod_ranges(meta, what: str, level: int = 0, limits: Limits = LIMITS,
               whole: bool = True) -> tuple[list[str], np.ndarray]:
    """``(filenames, ranges (R, 3) int64 of file, offset, count)`` of LOD ``level``, in tree order, checked.
    ``whole``: the level is to be read into memory, so its total is held to ``limits.max_gaussians`` too (each
    range always is)."""
    if not isinstance(meta, dict):
        raise SogError(f"{what} is not a JSON object")
    filenames = meta.get(FILENAMES)
    if not isinstance(filenames, list) or not filenames:
        raise SogError(f"{what}: 'filenames' must be a non-empty list of file names")
    for i, name in enumerate(filenames):
        parts = PurePosixPath(name).parts if isinstance(name, str) else ()
        if not parts or name.startswith(("/", "\\")) or ".." in parts or "\\" in name or "\x00" in name \
                or name.endswith(META_NAME) or ":" in parts[0]:
            raise SogError(f"{what}: filenames[{i}] must be a relative path inside its folder, not {name!r:.60}")
    if TREE not in meta:
        raise SogError(f"{what} has no 'tree'")
    ranges: list[tuple[int, int, int]] = []
    stack = [(meta[TREE], 1)]
    nodes = 0
    key = str(level)
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_lod_nodes:
            raise SogError(f"{what}: the tree has more than {limits.max_lod_nodes:,} nodes")
        if depth > limits.max_lod_depth:
            raise SogError(f"{what}: the tree is more than {limits.max_lod_depth} levels deep")
        if not isinstance(node, dict):
            raise SogError(f"{what}: a tree node is not an object")
        lods = node.get(LODS, {})
        if not isinstance(lods, dict):
            raise SogError(f"{what}: a node's 'lods' is not an object")
        lod = lods.get(key)
        if lod is not None:
            if not isinstance(lod, dict):
                raise SogError(f"{what}: a node's lod {key} is not an object")
            ranges.append((check_int(lod.get(FILE), f"{what}: lod file", 0, len(filenames) - 1),
                           check_int(lod.get(OFFSET), f"{what}: lod offset", 0, limits.max_gaussians),
                           check_int(lod.get(COUNT), f"{what}: lod count", 0, limits.max_gaussians)))
        if ERRORS in node:
            _check_errors(node[ERRORS], what)
        children = node.get(CHILDREN, [])
        if not isinstance(children, list):
            raise SogError(f"{what}: a node's 'children' is not a list")
        stack.extend((child, depth + 1) for child in reversed(children))
    if not ranges:
        raise SogError(f"{what}: no Gaussians at level of detail {level} (levels: {meta.get(LOD_LEVELS)!r:.40})")
    table = np.array(ranges, np.int64).reshape(-1, 3)
    _check_disjoint(table, filenames, what, level)
    total = int(table[:, 2].sum())
    if whole and total > limits.max_gaussians:
        raise SogError(f"{what}: level {level} holds {total:,} Gaussians, more than sog's limit of "
                       f"{limits.max_gaussians:,}")
    return filenames, table


def _check_errors(errors, what: str) -> None:
    """Refuse a leaf's ``errors`` that is not a list of at most `MAX_ERROR_LEVELS` finite numbers >= 0."""
    if not isinstance(errors, list) or len(errors) > MAX_ERROR_LEVELS:
        raise SogError(f"{what}: a leaf's 'errors' must be a list of at most {MAX_ERROR_LEVELS} numbers")
    for e in errors:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not np.isfinite(e) or e < 0:
            raise SogError(f"{what}: a leaf's 'errors' holds {str(e)[:20]!r}; each must be a finite number >= 0")


def _check_disjoint(table: np.ndarray, filenames: list[str], what: str, level: int) -> None:
    """Refuse two ranges (R, 3) of one level that share a Gaussian of a file (empty ranges share nothing)."""
    used = table[table[:, 2] > 0]
    order = np.lexsort((used[:, 1], used[:, 0]))
    file, offset, count = used[order].T
    clash = np.flatnonzero((file[1:] == file[:-1]) & (offset[1:] < offset[:-1] + count[:-1]))
    if clash.size:
        i = int(clash[0])
        raise SogError(f"{what}: ranges of level {level} overlap in {filenames[int(file[i])]!r:.60} "
                       f"(offset {int(offset[i])}+{int(count[i])} and offset {int(offset[i + 1])}); a level holds "
                       "each Gaussian once")


def _read_tree(path: Path, limits: Limits) -> dict:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_lod_json_bytes + 1)
    except OSError as exc:
        raise SogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return parse_json(data, str(path), limits.max_lod_json_bytes, limits)


def _used_files(path: Path, filenames: list[str], table: np.ndarray) -> list[int]:
    """The files ``table``'s ranges read, ascending; two names of one file are refused."""
    used = sorted(set(table[:, 0].tolist()))
    seen: dict[str, int] = {}
    for file in used:
        real = os.path.realpath(path.parent / filenames[file])
        if real in seen:
            raise SogError(f"{path}: filenames[{seen[real]}] and filenames[{file}] name the same file")
        seen[real] = file
    return used


def _check_ranges(path: Path, filenames: list[str], table: np.ndarray, counts: dict[int, int], level: int) -> None:
    """Refuse a range of ``table`` (R, 3) past the ``counts`` (file -> Gaussians) of its file, and a level of no
    Gaussians."""
    for file, offset, count in table.tolist():
        if offset + count > counts[file]:
            raise SogError(f"{path}: range {offset}+{count} exceeds the {counts[file]} Gaussians of "
                           f"{filenames[file]}")
    if not int(table[:, 2].sum()):
        raise SogError(f"{path}: level of detail {level} holds zero Gaussians")


def lod_summary(path: str | os.PathLike, limits: Limits = LIMITS) -> tuple[int, int, int]:
    """``(level 0's Gaussians, SH degree, bytes of the files it reads)`` of a ``lod-meta.json``, from its tree and
    each file's meta alone (the planes are not decoded, so a level larger than sog reads into memory is described
    too; one file, the smallest, is read for its SH degree). Each range is checked against its file's count."""
    from . import load
    from .sog_meta import check_sog_meta, open_sog

    path = Path(path)
    filenames, table = lod_ranges(_read_tree(path, limits), str(path), 0, limits, whole=False)
    used = _used_files(path, filenames, table)
    counts, sizes = {}, {}
    for file in used:
        meta, _, sizes[file] = open_sog(path.parent / filenames[file], limits)
        counts[file] = check_sog_meta(meta, f"{path.parent / filenames[file]}: meta.json", limits)
    _check_ranges(path, filenames, table, counts, 0)
    total = int(table[:, 2].sum())
    smallest = min(used, key=lambda f: (counts[f], f))
    return total, load(path.parent / filenames[smallest], limits).sh_degree, sum(sizes.values())


def read_lod_meta(path: str | os.PathLike, level: int = 0, limits: Limits = LIMITS) -> Splats:
    """All Gaussians of LOD ``level`` (0 is the full-resolution level), in tree order."""
    from . import load

    path = Path(path)
    filenames, table = lod_ranges(_read_tree(path, limits), str(path), level, limits)
    used = _used_files(path, filenames, table)
    scenes = {file: load(path.parent / filenames[file], limits) for file in used}
    _check_ranges(path, filenames, table, {file: len(scene) for file, scene in scenes.items()}, level)
    # one gather over the files laid end to end (memory: the files plus the result, whatever the range count)
    base = np.cumsum([0] + [len(scenes[f]) for f in used])
    start = {f: int(b) for f, b in zip(used, base[:-1])}
    first = np.array([start[f] for f in table[:, 0].tolist()], np.int64) + table[:, 1]
    counts = table[:, 2]
    ends = np.cumsum(counts)
    index = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(first - (ends - counts), counts)
    every = Splats.concat([scenes[f] for f in used]) if len(used) > 1 else scenes[used[0]]
    return every.permute(torch.from_numpy(index)).validate(str(path))
