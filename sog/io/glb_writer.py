"""Writer of binary glTF (``.glb``) with ``KHR_gaussian_splatting`` (layout: `sog.io.glb_format`; read back by
`sog.io.glb`): one POINTS primitive, every attribute float32 in one buffer, in the order given."""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from ..errors import SogError
from ..splats import Splats
from . import glb_format as fmt
from .atomic import atomic_path
from .limits import check_writable

MAX_COUNT = (1 << 31) - 1
MAX_BYTES = (1 << 32) - 1  #: a GLB's u32 length


def encode_glb(splats: Splats, generator: str = "sog") -> bytes:
    """The bytes of a ``.glb`` holding ``splats`` (in the PLY frame; written in glTF's +Y-up frame). Refuses
    (`SogError`) an SH degree above 3 or a scene past GLB's 4 GiB."""
    check_writable(splats, "a .glb (KHR_gaussian_splatting)", MAX_COUNT, fmt.MAX_SH_DEGREE)
    n, k = len(splats), int(splats.shN.shape[1])
    means, quats, shN = fmt.turn_z180(splats.means.detach().cpu().double().numpy(),
                                  splats.quats.detach().cpu().double().numpy(),
                                  splats.shN.detach().cpu().double().numpy())
    quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    columns = {
        "POSITION": means,
        fmt.PREFIX + "ROTATION": quats[:, [1, 2, 3, 0]],
        fmt.PREFIX + "SCALE": np.exp(splats.scales.detach().cpu().double().numpy()),
        fmt.PREFIX + "OPACITY": 1 / (1 + np.exp(-splats.opacities.detach().cpu().double().numpy())),
        fmt.PREFIX + "SH_DEGREE_0_COEF_0": splats.sh0.detach().cpu().double().numpy().reshape(n, 3),
    }
    for i, name in enumerate(fmt.sh_attributes(splats.sh_degree)):
        columns[name] = shN[:, i]
    accessors, views, attributes, parts, offset = [], [], {}, [], 0
    for name, values in columns.items():
        data = np.ascontiguousarray(values, "<f4")
        kind = fmt.ATTRIBUTES.get(name, "VEC3")
        accessor = {"bufferView": len(views), "componentType": fmt.FLOAT, "count": n, "type": kind}
        if name == "POSITION":  # required by glTF for positions
            accessor.update(min=data.min(0).tolist(), max=data.max(0).tolist())
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": data.nbytes})
        attributes[name] = len(accessors)
        accessors.append(accessor)
        parts.append(data.tobytes())
        offset += data.nbytes  # every view is a multiple of 4 bytes: float32
    gltf = {
        "asset": {"version": "2.0", "generator": generator},
        "extensionsUsed": [fmt.EXTENSION],
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"mode": fmt.POINTS, "attributes": attributes, "extensions": {fmt.EXTENSION: {
            "kernel": "ellipse", "colorSpace": "srgb_rec709_display", "projection": "perspective",
            "sortingMethod": "cameraDistance"}}}]}],
        "buffers": [{"byteLength": offset}], "bufferViews": views, "accessors": accessors,
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + offset
    if total > MAX_BYTES:
        raise SogError(f"{n:,} Gaussians make {total:,} bytes of .glb, more than its 4 GiB")
    return b"".join([struct.pack("<4sII", fmt.MAGIC, fmt.VERSION, total), struct.pack("<II", len(text), fmt.CHUNK_JSON),
                     text, struct.pack("<II", offset, fmt.CHUNK_BIN), *parts])


def write_glb(splats: Splats, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write ``splats`` as a ``.glb`` with ``KHR_gaussian_splatting`` at ``path`` atomically."""
    data = encode_glb(splats)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
