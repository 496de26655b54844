"""Reader of binary glTF (``.glb``) with ``KHR_gaussian_splatting`` (layout: `sog.io.glb_format`).

Every POINTS primitive carrying the extension is read and they are concatenated in mesh order (node transforms are
not applied: a splat file from splat-transform or sog has one primitive under an identity node). The scene is turned
from glTF's +Y-up frame back to the PLY frame (`glb_format.turn_z180`). Declared sizes (chunks, views, accessors) are checked against the
bytes there before anything is read; a ``.gltf`` with external buffers is refused.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from ..errors import SogError
from ..splats import Splats, sh_degree_from_rest
from . import glb_format as fmt
from .limits import check_count, parse_json, read_whole


def read_glb(path: str | os.PathLike) -> Splats:
    """Read a ``.glb`` with ``KHR_gaussian_splatting`` into `Splats` (validated), in the PLY frame."""
    data = read_whole(path, ".glb")
    return decode_glb(data, str(path)).validate(str(path))


def _chunks(data: bytes, name: str) -> tuple[dict, bytes]:
    if len(data) < 20:
        raise SogError(f"{name}: too small to be a .glb file")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != fmt.MAGIC:
        raise SogError(f"{name}: not a .glb file (bad magic)")
    if version != fmt.VERSION:
        raise SogError(f"{name}: unsupported glTF binary version {version} (sog reads 2)")
    if length > len(data):
        raise SogError(f"{name}: truncated .glb ({len(data):,} bytes, header says {length:,})")
    size, kind = struct.unpack_from("<II", data, 12)
    if kind != fmt.CHUNK_JSON or 20 + size > length:
        raise SogError(f"{name}: .glb does not start with a whole JSON chunk")
    gltf = parse_json(data[20:20 + size], f"{name}: glTF JSON")
    if not isinstance(gltf, dict):
        raise SogError(f"{name}: glTF JSON is not an object")
    off = 20 + size + (-size % 4)
    binary = b""
    if off + 8 <= length:
        size, kind = struct.unpack_from("<II", data, off)
        if kind != fmt.CHUNK_BIN or off + 8 + size > length:
            raise SogError(f"{name}: .glb binary chunk is corrupt or truncated")
        binary = data[off + 8:off + 8 + size]
    return gltf, binary


def _list(gltf: dict, key: str, name: str) -> list:
    value = gltf.get(key, [])
    if not isinstance(value, list):
        raise SogError(f"{name}: glTF '{key}' is not a list")
    return value


def _accessor(gltf: dict, binary: bytes, index, kind: str, name: str, what: str) -> np.ndarray:
    """Accessor ``index`` as an (count, components) float64 array, its type and bounds checked."""
    accessors, views = _list(gltf, "accessors", name), _list(gltf, "bufferViews", name)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(accessors):
        raise SogError(f"{name}: {what} names accessor {index!r}, which does not exist")
    acc = accessors[index]
    if not isinstance(acc, dict) or acc.get("type") != kind or acc.get("componentType") not in fmt.COMPONENTS:
        raise SogError(f"{name}: {what} accessor must be a {kind} of a glTF component type")
    if "sparse" in acc:
        raise SogError(f"{name}: {what} accessor is sparse (not supported)")
    count = check_count(acc.get("count"), f"{name}: {what} accessor count")
    dtype, width = fmt.COMPONENTS[acc["componentType"]], fmt.TYPES[kind]
    view_index = acc.get("bufferView")
    if isinstance(view_index, bool) or not isinstance(view_index, int) or not 0 <= view_index < len(views):
        raise SogError(f"{name}: {what} accessor has no buffer view")
    view = views[view_index]
    if not isinstance(view, dict) or view.get("buffer", 0) != 0:
        raise SogError(f"{name}: {what} data is not in the .glb's own binary chunk (external buffers are not read)")
    start = view.get("byteOffset", 0)
    length = view.get("byteLength")
    extra = acc.get("byteOffset", 0)
    stride = view.get("byteStride", dtype.itemsize * width)
    for value, label in ((start, "byteOffset"), (length, "byteLength"), (extra, "accessor byteOffset"),
                         (stride, "byteStride")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SogError(f"{name}: {what} buffer view {label} is {value!r}, not a byte count")
    element = dtype.itemsize * width
    if stride < element:
        raise SogError(f"{name}: {what} byteStride {stride} is smaller than an element ({element} bytes)")
    need = extra + stride * (count - 1) + element
    if start + length > len(binary) or need > length:
        raise SogError(f"{name}: {what} accessor needs {need:,} bytes, its buffer view holds {length:,} of "
                       f"{len(binary):,}")
    raw = np.frombuffer(binary, np.uint8, count=need, offset=start + extra)
    rows = np.lib.stride_tricks.as_strided(raw, shape=(count, element), strides=(stride, 1))
    values = np.ascontiguousarray(rows).view(dtype).reshape(count, width)
    return fmt.dequantise(values, acc["componentType"], bool(acc.get("normalized", False)))


def decode_glb(data: bytes, name: str = "glb") -> Splats:
    """Decode the bytes of a ``.glb``: every splat primitive, concatenated, in the PLY frame."""
    gltf, binary = _chunks(data, name)
    parts = []
    for mesh in _list(gltf, "meshes", name):
        for prim in (mesh.get("primitives", []) if isinstance(mesh, dict) else []):
            if not isinstance(prim, dict) or fmt.EXTENSION not in (prim.get("extensions") or {}):
                continue
            attributes = prim.get("attributes")
            if not isinstance(attributes, dict):
                raise SogError(f"{name}: splat primitive has no attributes")
            missing = [a for a in fmt.ATTRIBUTES if a not in attributes]
            if missing:
                raise SogError(f"{name}: splat primitive is missing {', '.join(missing)}")
            cols = {a: _accessor(gltf, binary, attributes[a], kind, name, a.removeprefix(fmt.PREFIX))
                    for a, kind in fmt.ATTRIBUTES.items()}
            higher = [a for a in attributes if a.startswith(fmt.PREFIX + "SH_DEGREE_") and
                      not a.endswith("SH_DEGREE_0_COEF_0")]
            degree = sh_degree_from_rest(len(higher))
            names = fmt.sh_attributes(degree)
            if sorted(higher) != sorted(names):
                raise SogError(f"{name}: SH attributes are not whole degrees 1..{degree}")
            counts = {len(c) for c in cols.values()}
            shN = np.stack([_accessor(gltf, binary, attributes[a], "VEC3", name, a.removeprefix(fmt.PREFIX))
                            for a in names], 1) if names else np.zeros((len(cols["POSITION"]), 0, 3))
            counts.add(len(shN))
            if len(counts) != 1:
                raise SogError(f"{name}: splat attributes have different counts ({sorted(counts)})")
            scale = cols[fmt.PREFIX + "SCALE"]
            if np.any(~(scale > 0)):
                raise SogError(f"{name}: SCALE holds values that are not positive (it is linear, not log)")
            quats = cols[fmt.PREFIX + "ROTATION"][:, [3, 0, 1, 2]]
            means, quats, shN = fmt.turn_z180(cols["POSITION"], quats, shN)
            alpha = np.clip(cols[fmt.PREFIX + "OPACITY"][:, 0], 1e-6, 1 - 1e-6)
            parts.append(Splats.from_arrays(means, np.log(scale), quats, np.log(alpha / (1 - alpha)),
                                            cols[fmt.PREFIX + "SH_DEGREE_0_COEF_0"], shN))
    if not parts:
        raise SogError(f"{name}: .glb holds no {fmt.EXTENSION} primitive")
    if len({p.sh_degree for p in parts}) != 1:
        raise SogError(f"{name}: splat primitives have different SH degrees")
    scene = parts[0] if len(parts) == 1 else Splats.concat(parts)
    check_count(len(scene), f"{name}: .glb splats")
    return scene
