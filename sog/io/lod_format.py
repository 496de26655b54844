"""The shape of PlayCanvas's streamed SOG, ``lod-meta.json`` version 1, in one place: the reader (`sog.io.lod`) and
the writer (`sog.io.lod_writer`) both spell its keys from here.

    {"version": 1, "asset": {"generator": ...}, "count": N, "counts": [N_0, N_1, ...], "lodLevels": L,
     "lodErrors": true, "filenames": ["0_0/meta.json", ...],
     "tree": {"bound": {"min": [x, y, z], "max": [x, y, z]},
              "children": [node, ...]                              # an inner node, or a leaf:
              "lods": {"0": {"file": i, "offset": o, "count": c}, "1": {...}},
              "errors": [0, e_1, ...]}}

A leaf's ``lods[k]`` is the range of level k's Gaussians inside the leaf's region: ``count`` Gaussians from
``offset`` of the unbundled SOG ``filenames[file]``. A level holds each of its Gaussians once; level 0 is the
finest. ``bound`` is the box of the Gaussians under the node (centre ± the 1-sigma ellipsoid's extent). With
``lodErrors`` true in the header (optional), each leaf's ``errors[k]`` is what level k loses in the leaf against
its finest level, indexed by level (`sog.reduce.lod_error`: relative, 0 at level 0, not falling with k)."""

from __future__ import annotations

META_NAME = "lod-meta.json"
VERSION = 1

VERSION_KEY, ASSET, COUNT, COUNTS, LOD_LEVELS = "version", "asset", "count", "counts", "lodLevels"
FILENAMES, TREE = "filenames", "tree"
BOUND, MIN, MAX, CHILDREN, LODS = "bound", "min", "max", "children", "lods"
FILE, OFFSET = "file", "offset"  # with COUNT: one range of a leaf's level
LOD_ERRORS, ERRORS = "lodErrors", "errors"  # the header's flag, a leaf's errors by level


def chunk_name(level: int, index: int) -> str:
    """The file name of level ``level``'s ``index``-th chunk, an unbundled SOG folder (as splat-transform names
    them)."""
    return f"{level}_{index}/meta.json"
