"""sog's raw float file: a scene's six attribute arrays as float32, for the viewer page.

`sog view` serves every input that the browser cannot decode from its own bytes (PLY, ``.spz``, ``.splat``,
``lod-meta.json``) in this form, so the page renders exactly what `sog.load` read. Layout (little endian):
8 magic bytes ``SOGRAW01``, a uint32 header length, a JSON header ``{"count", "sh_degree"}`` padded with spaces
so the arrays start on a 4-byte boundary, then float32 arrays means (N, 3), scales (N, 3), quats (N, 4),
opacities (N,), sh0 (N, 3), shN (N, K, 3). ``static/sog-decoder.js`` `decodeRaw` reads it.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from ..errors import SogError
from ..splats import SH_REST_COUNT, Splats

MAGIC = b"SOGRAW01"
#: the arrays in file order, with their per-Gaussian widths (shN: 3K)
ARRAYS = ("means", "scales", "quats", "opacities", "sh0", "shN")


def raw_bytes(splats: Splats) -> bytes:
    """The raw float file of ``splats`` (N Gaussians, SH degree d): about 4 x (14 + 3K) bytes per Gaussian."""
    n = len(splats)
    header = json.dumps({"count": n, "sh_degree": splats.sh_degree}).encode()
    header += b" " * (-(len(MAGIC) + 4 + len(header)) % 4)
    parts = [MAGIC, struct.pack("<I", len(header)), header]
    for name in ARRAYS:
        parts.append(np.ascontiguousarray(getattr(splats, name).detach().cpu().numpy().reshape(n, -1),
                                          dtype="<f4").tobytes())
    return b"".join(parts)


def read_raw(data: bytes) -> Splats:
    """Inverse of `raw_bytes` (for tests and tools)."""
    import torch

    if data[:8] != MAGIC or len(data) < 12:
        raise SogError("not a sog raw float file")
    (hlen,) = struct.unpack("<I", data[8:12])
    try:
        header = json.loads(data[12:12 + hlen])
        n, k = int(header["count"]), SH_REST_COUNT[int(header["sh_degree"])]
    except (ValueError, KeyError, TypeError):
        raise SogError("sog raw float file: bad header") from None
    widths = {"means": 3, "scales": 3, "quats": 4, "opacities": 1, "sh0": 3, "shN": 3 * k}
    floats = np.frombuffer(data, "<f4", offset=12 + hlen)
    if floats.size < n * sum(widths.values()):
        raise SogError("sog raw float file is truncated")
    out, offset = {}, 0
    for name in ARRAYS:
        size = n * widths[name]
        out[name] = torch.from_numpy(floats[offset:offset + size].astype(np.float32))
        offset += size
    return Splats(means=out["means"].reshape(n, 3), scales=out["scales"].reshape(n, 3),
                  quats=out["quats"].reshape(n, 4), opacities=out["opacities"], sh0=out["sh0"].reshape(n, 1, 3),
                  shN=out["shN"].reshape(n, k, 3))
