"""Out-of-core reading of a binary little-endian INRIA PLY: the vertex records memory-mapped (``np.memmap`` over the
file's body), handed out as blocks of positions or as `Splats` of a subset of rows, without reading the whole file.

The header is checked as `sog.io.ply.read_ply` checks it (`check_ply_header`: its size, the vertex count within
the limits, the body long enough for every declared row), and every block handed out is checked for NaN and Inf
(positions by `PlyMemmap.positions`, whole rows by `Splats.validate` in `PlyMemmap.rows`), so a bad file is the
same `SogError` as a whole read gives, found at the block that holds the bad value.

Only the plain layout maps: ``format binary_little_endian``, ``vertex`` the first element, scalar properties only,
the Gaussian properties present (`memmappable` says whether a file is one; any other PLY is read whole)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import SogError
from ..splats import Splats
from .limits import LIMITS, Limits, check_magnitudes
from .ply import REQUIRED, check_ply_header, splats_from_records

#: numpy little-endian dtype of each PLY scalar type
PLY_DTYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "<i2", "int16": "<i2",
              "ushort": "<u2", "uint16": "<u2", "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
              "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8"}

#: the most rows a mapped PLY may declare: its memory is the chunk's, not the file's (a whole read keeps
#: `Limits.max_gaussians`); the header must still fit the file (`check_ply_header`), and the split's positions and
#: indices (20 bytes a Gaussian) are less than the 56 or more a row of the file takes
MAX_MAPPED_ROWS = 1 << 31

#: rows mapped at once when streaming positions: 256 Ki rows of a 59-float SH-3 record is 59 MiB
BLOCK_ROWS = 1 << 18
#: indices gathered from one map: at most that many pages of the file touched before it is unmapped
GATHER_ROWS = 1 << 15


@dataclass(frozen=True)
class PlyLayout:
    """Where the vertex records of a PLY lie: ``count`` rows of ``dtype`` from byte ``offset``."""

    count: int
    dtype: np.dtype
    offset: int


def ply_layout(path: str | os.PathLike, limits: Limits = LIMITS) -> PlyLayout | None:
    """The vertex layout of ``path`` when it is a binary little-endian PLY whose first element is ``vertex`` with
    scalar properties that include the Gaussian ones; None for any other PLY (ASCII, big-endian, compressed,
    lists). A header that is not a PLY header, or lies about its size, is a `SogError` (`check_ply_header`, with the
    count limit raised to `MAX_MAPPED_ROWS`)."""
    check_ply_header(path, replace(limits, max_gaussians=max(limits.max_gaussians, MAX_MAPPED_ROWS)))
    with open(path, "rb") as fh:
        head = fh.read(limits.max_ply_header_bytes)
    end = re.search(rb"(^|[\r\n])end_header[ \t]*(\r\n|\n|\r)", head)
    lines = [line.split() for line in head[:end.start()].decode("latin-1").splitlines()]
    lines = [words for words in lines if words]
    if not lines or lines[0] != ["ply"]:
        return None
    if ["format", "binary_little_endian", "1.0"] not in lines:
        return None
    fields: list[tuple[str, str]] = []
    count, element = None, None
    for words in lines:
        if words[0] == "element":
            if element is not None:
                break  # the vertex element is over; later elements lie after its rows
            element = words[1] if len(words) > 2 else None
            if element != "vertex":
                return None
            count = int(words[2])
        elif words[0] == "property" and element == "vertex":
            if len(words) != 3 or words[1] not in PLY_DTYPES:
                return None  # a list property: rows of varying size
            fields.append((words[2], PLY_DTYPES[words[1]]))
    names = [name for name, _ in fields]
    if count is None or not count or len(set(names)) != len(names) or any(p not in names for p in REQUIRED):
        return None
    return PlyLayout(count=count, dtype=np.dtype(fields), offset=end.end())


def memmappable(path: str | os.PathLike) -> bool:
    """True when ``path`` is a PLY file `PlyMemmap` can map (never raises: a file it cannot read is False)."""
    try:
        return Path(path).is_file() and ply_layout(path) is not None
    except (SogError, OSError, ValueError):
        return False


class PlyMemmap:
    """The vertex records of a binary INRIA PLY, memory-mapped read-only a block at a time: each block of rows is
    mapped, copied out and unmapped, so the file's pages never pile up in this process's memory (a mapped page
    counts in its RSS until it is unmapped)."""

    def __init__(self, path: str | os.PathLike, limits: Limits = LIMITS):
        layout = ply_layout(path, limits)
        if layout is None:
            raise SogError(f"{path}: not a binary little-endian INRIA PLY (only that layout is read out of core)")
        self.path, self.limits, self.layout = str(path), limits, layout

    def __len__(self) -> int:
        return self.layout.count

    def _map(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start``..``stop - 1`` as a read-only memory map (unmapped when the caller drops it)."""
        try:
            return np.memmap(self.path, dtype=self.layout.dtype, mode="r",
                             offset=self.layout.offset + start * self.layout.dtype.itemsize, shape=(stop - start,))
        except (OSError, ValueError) as exc:
            raise SogError(f"{self.path}: cannot map its rows ({exc})") from None

    def positions(self, block: int = BLOCK_ROWS) -> np.ndarray:
        """(N, 3) float32 centres, read ``block`` rows at a time (only x, y, z are copied out); a non-finite value is
        a `SogError` naming its row."""
        n = len(self)
        out = np.empty((n, 3), np.float32)
        for start in range(0, n, block):
            rows = self._map(start, min(n, start + block))
            part = out[start:start + len(rows)]
            for axis, name in enumerate("xyz"):
                part[:, axis] = rows[name]
            del rows
            if not np.isfinite(part).all():
                first = start + int(np.flatnonzero(~np.isfinite(part).all(1))[0])
                raise SogError(f"{self.path}: means has Gaussian(s) with NaN or Inf values (first at index {first})")
        return out

    def records(self, index: np.ndarray, block: int = GATHER_ROWS) -> np.ndarray:
        """(n,) structured records of the rows ``index`` ((n,) int64), gathered ``block`` indices at a time from a
        map of just the rows they span."""
        out = np.empty(len(index), self.layout.dtype)
        for start in range(0, len(index), block):
            piece = index[start:start + block]
            lo, hi = int(piece.min()), int(piece.max()) + 1
            rows = self._map(lo, hi)
            out[start:start + len(piece)] = rows[piece - lo]
            del rows
        return out

    def rows(self, index: np.ndarray) -> Splats:
        """`Splats` of the rows ``index`` ((n,) int, ascending reads the file in order), checked as a whole read
        checks them (`read_ply`: properties, finiteness, magnitudes)."""
        index = np.asarray(index, np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise SogError(f"{self.path}: row index out of range 0..{len(self) - 1}")
        what = f"{self.path} (rows {int(index.min()) if index.size else 0}..)"
        return check_magnitudes(splats_from_records(self.records(index), what), what, self.limits)
