"""Standard 3DGS PLY (the INRIA layout) to and from `Splats`, via plyfile.

Properties: ``x y z [nx ny nz] f_dc_0..2 f_rest_0..(3K-1) opacity scale_0..2 rot_0..3``.
``f_rest`` is channel-major (all red coefficients, then green, then blue), so
``shN[:, k, c] = f_rest_{c*K + k}``. Any other vertex property is kept in ``Splats.extras``.
Binary little/big endian and ASCII files are read; the SH degree comes from the
``f_rest_*`` count. PlayCanvas ``.compressed.ply`` files are recognised and decoded too.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from ..errors import SogError
from ..splats import Splats, sh_degree_from_rest
from .atomic import atomic_path
from .limits import LIMITS, Limits, check_count

REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
            "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
_REST = re.compile(r"^f_rest_(\d+)$")


def read_ply(path: str | os.PathLike) -> Splats:
    """Read a 3DGS PLY file into `Splats` (float32, CPU). Raises `SogError` on bad input."""
    check_ply_header(path)
    try:
        ply = PlyData.read(str(path))
    except FileNotFoundError:
        raise SogError(f"{path}: no such file") from None
    except Exception as exc:  # plyfile raises several types for malformed/truncated data
        raise SogError(f"{path}: not a readable PLY file ({_one_line(exc)})") from None
    if "vertex" not in ply:
        raise SogError(f"{path}: PLY has no 'vertex' element")
    from .compressed_ply import is_compressed_ply, read_compressed_ply
    if is_compressed_ply(ply):
        return read_compressed_ply(ply, str(path))
    return splats_from_records(ply["vertex"].data, path)


def splats_from_records(vertex: np.ndarray, path) -> Splats:
    """`Splats` from (N,) INRIA vertex records (a structured array: plyfile's, or rows of `sog.io.ply_memmap`),
    checked as `read_ply` checks a file: the Gaussian properties present, ``f_rest_*`` a contiguous multiple of 3,
    every value finite (`Splats.validate`). Other properties go to ``extras``."""
    names = list(vertex.dtype.names or ())
    missing = [p for p in REQUIRED if p not in names]
    if missing:
        raise SogError(f"{path}: PLY is missing Gaussian propert{'y' if len(missing) == 1 else 'ies'} "
                       f"{', '.join(missing)}")
    rest = sorted((int(m.group(1)) for m in map(_REST.match, names) if m))
    if rest != list(range(len(rest))) or len(rest) % 3:
        raise SogError(f"{path}: f_rest_* properties are not a contiguous multiple of 3 (found {len(rest)})")
    k = len(rest) // 3
    sh_degree_from_rest(k)
    n = len(vertex)

    table = _float32_table(vertex)

    def cols(keys: list[str]) -> torch.Tensor:
        if not keys:
            return torch.zeros(n, 0)
        if table is not None:  # one pass over the records gathers the columns, a block of rows at a time
            idx, out = [names.index(key) for key in keys], np.empty((n, len(keys)), np.float32)
            for s in range(0, n, 1 << 16):
                out[s:s + (1 << 16)] = table[s:s + (1 << 16), idx]
            return torch.from_numpy(out)
        return torch.from_numpy(np.stack([np.asarray(vertex[key], dtype=np.float32) for key in keys], axis=1))

    rest_names = [f"f_rest_{i}" for i in range(3 * k)]
    # shN[:, j, c] = f_rest_{c*K + j}: gathered in that order, no transposed copy
    sh_names = [f"f_rest_{c * k + j}" for j in range(k) for c in range(3)]
    known = set(REQUIRED) | set(rest_names)
    splats = Splats(
        means=cols(["x", "y", "z"]),
        scales=cols(["scale_0", "scale_1", "scale_2"]),
        quats=cols(["rot_0", "rot_1", "rot_2", "rot_3"]),
        opacities=cols(["opacity"])[:, 0].contiguous(),
        sh0=cols(["f_dc_0", "f_dc_1", "f_dc_2"]).reshape(n, 1, 3),
        shN=cols(sh_names).reshape(n, k, 3),
        extras={name: _native_column(vertex, name, path) for name in names if name not in known},
    )
    return splats.validate(f"{path}")


def write_ply(splats: Splats, path: str | os.PathLike, *, ascii: bool = False,
              overwrite: bool = False, extras: bool = True) -> None:
    """Write `Splats` as a 3DGS PLY (binary little endian unless ``ascii``), atomically."""
    splats.validate("scene to write")
    n, k = len(splats), splats.shN.shape[1]
    columns: list[tuple[str, np.ndarray]] = []

    def add(names: list[str], tensor: torch.Tensor) -> None:
        array = tensor.detach().cpu().float().reshape(n, -1).numpy()
        columns.extend(zip(names, array.T))

    add(["x", "y", "z"], splats.means)
    normals = [name for name in ("nx", "ny", "nz") if extras and name in splats.extras]
    columns.extend((name, splats.extras[name].cpu().numpy()) for name in normals)
    add(["f_dc_0", "f_dc_1", "f_dc_2"], splats.sh0)
    add([f"f_rest_{i}" for i in range(3 * k)], splats.shN.transpose(1, 2))  # channel-major
    add(["opacity"], splats.opacities)
    add(["scale_0", "scale_1", "scale_2"], splats.scales)
    add(["rot_0", "rot_1", "rot_2", "rot_3"], splats.quats)
    if extras:
        for name, tensor in splats.extras.items():
            if name not in normals:
                columns.append((name, tensor.cpu().numpy()))
    assert len(columns) == len({c[0] for c in columns}), "duplicate PLY property"
    record = np.empty(n, dtype=[(name, array.dtype.str)
                                for name, array in columns])
    for name, array in columns:
        record[name] = array
    element = PlyElement.describe(record, "vertex")
    with atomic_path(path, overwrite) as tmp:
        PlyData([element], text=ascii, byte_order="<").write(str(tmp))


def _float32_table(vertex) -> np.ndarray | None:
    """The vertex records (N,) as an (N, P) float32 array view when all P properties are little-endian float32
    (as 3DGS trainers write them), else None. Gathering the columns from it takes one pass over the (memory-mapped)
    records; picking the 59 properties of an SH-3 file one by one took 59 strided passes (12 s at 6M)."""
    dtype = vertex.dtype
    fields = [dtype.fields[name] for name in dtype.names or ()]
    if (not fields or dtype.itemsize != 4 * len(fields) or vertex.ndim != 1
            or any(f[0] != np.dtype("<f4") or f[1] != 4 * i for i, f in enumerate(fields))):
        return None
    return np.asarray(vertex).view(np.float32).reshape(len(vertex), len(fields))


def _native_column(vertex, name: str, path) -> torch.Tensor:
    """An extra vertex property as a tensor in native byte order (torch refuses big-endian arrays)."""
    column = np.asarray(vertex[name])
    if column.dtype.kind not in "iuf":
        raise SogError(f"{path}: vertex property {name} is a list, not a number per Gaussian")
    return torch.from_numpy(np.ascontiguousarray(column.astype(column.dtype.newbyteorder("="))))


#: bytes of each PLY scalar type
PLY_TYPE_BYTES = {"char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
                  "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def check_ply_header(path, limits: Limits = LIMITS) -> None:
    """Check a PLY header before plyfile reads the file: it ends (``end_header``) within
    ``limits.max_ply_header_bytes``, the vertex count is within ``limits.max_gaussians``, and the element
    counts fit the bytes that follow the header (binary: count x row size; ASCII: a character per value),
    so a header cannot make the reader allocate for data that is not there."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(limits.max_ply_header_bytes)
    except OSError as exc:
        raise SogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    end = re.search(rb"(^|[\r\n])end_header[ \t]*(\r\n|\n|\r)", head)
    if end is None:
        raise SogError(f"{path}: PLY header has no end_header within its first {limits.max_ply_header_bytes:,} "
                       "bytes (truncated, or not a PLY file)")
    body = size - end.end()
    lines = head[:end.start()].decode("latin-1").splitlines()
    binary = any(line.split()[:2] in (["format", "binary_little_endian"], ["format", "binary_big_endian"])
                 for line in lines if line.strip())
    elements: list[list] = []  # [name, count, row bytes or None (a list property), property count]
    for line in lines:
        words = line.split()
        if len(words) >= 3 and words[0] == "element":
            try:
                count = int(words[2])
            except ValueError:
                raise SogError(f"{path}: PLY element {words[1]} has count {words[2][:20]!r}, not a number") from None
            if count < 0:
                raise SogError(f"{path}: PLY element {words[1]} has a negative count ({count})")
            elements.append([words[1], count, 0, 0])
        elif len(words) >= 3 and words[0] == "property" and elements:
            row = elements[-1]
            row[3] += 1
            if words[1] == "list" or row[2] is None:
                row[2] = None
            elif words[1] in PLY_TYPE_BYTES:
                row[2] += PLY_TYPE_BYTES[words[1]]
    for name, count, row, props in elements:
        if name == "vertex":
            check_count(count, f"{path}: PLY element vertex", limits) if count else None
    need = sum(count * (row if binary else props) for _, count, row, props in elements if row is not None)
    if need > body:
        raise SogError(f"{path}: not a readable PLY file (truncated: its header declares {need:,} bytes of data"
                       f"{'' if binary else ' or more'}, the file holds {body:,})")
    if not binary:
        widest = max((props for *_, props in elements), default=0)
        _check_ascii_lines(path, end.end(), ASCII_VALUE_BYTES * (widest + 256) + 4096)


#: the most characters one ASCII PLY value may take, with its separator (``-1.2345678901234567e-308``: 24)
ASCII_VALUE_BYTES = 64


def _check_ascii_lines(path, start: int, longest: int) -> None:
    """Refuse an ASCII PLY body with a line longer than ``longest`` bytes (any of ``\\n``, ``\\r``, ``\\r\\n`` ends
    one), read in 1 MiB pieces: plyfile reads a line whole, so one padded line would cost memory the values do
    not need."""
    line, length = 1, 0
    with open(path, "rb") as fh:
        fh.seek(start)
        while piece := fh.read(1 << 20):
            parts = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for i, part in enumerate(parts):
                length += len(part)
                if length > longest:
                    raise SogError(f"{path}: ASCII PLY data line {line} is longer than the {longest:,} bytes its "
                                   "values can need")
                if i < len(parts) - 1:
                    line, length = line + 1, 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def inria_ply_size(n: int, sh_degree: int) -> int:
    """Bytes of the standard INRIA 3DGS PLY (binary, with normals) for ``n`` Gaussians: the reference
    that compression ratios are measured against."""
    from ..splats import SH_REST_COUNT
    names = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
             + [f"f_rest_{i}" for i in range(3 * SH_REST_COUNT[sh_degree])]
             + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {n}\n"
              + "".join(f"property float {name}\n" for name in names) + "end_header\n")
    return len(header.encode()) + 4 * len(names) * n
