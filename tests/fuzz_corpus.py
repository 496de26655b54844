"""A seeded mutation fuzzer for sog's readers: valid seed files of every format sog reads, mutations of
them, and a bounded run of one case. Used by tests/test_fuzz.py, tests/test_bad_input.py and tests/fuzz_readers.py.

Seeds (`make_seeds`): the first ``n`` Gaussians of ``data/sample.ply`` written by sog's own writers (binary,
ASCII and big-endian PLY, native ``.sog`` one layer and layered, SOG v2 zip and folder) and by the small
writers here for the formats sog only reads (PlayCanvas compressed PLY, ``.splat``, ``.spz`` v2/v3 gzip and
v4 zstd, ``lod-meta.json`` over a SOG folder).

Mutations (`mutate`): bit flips, byte overwrites, truncations, insertions, zeroed runs; per format, header
edits (PLY element counts, property types and lines, format line, a long comment; SPZ count, version,
degree, fractional bits, v4 table of contents); ``meta.json``/``lod-meta.json`` field edits (a number set to
0, -1, huge, Infinity, NaN, or the wrong type, a key removed, a list cut or padded, deep nesting, a tree
with many children); plane edits (a plane swapped, removed, replaced by an image with huge declared
sides), an unused entry that inflates to 32 MiB, flipped bytes inside a deflated entry.

`run_case` loads one case in-process through the readers (`sog.io.read_checked`, without `sog.load`'s
last-resort conversion, so an error a reader does not turn into `SogError` is counted as an escape),
under a wall-clock alarm and with the peak RSS measured (Linux ``clear_refs``); each case ends as
``error`` (a `SogError`), ``valid`` (finite `Splats` of the right shapes), ``escape`` (any other exception),
``hang`` (over the time bound) or ``memory`` (over the memory bound).
"""

from __future__ import annotations

import gzip
import json
import math
import random
import shutil
import signal
import struct
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample.ply"

#: every format the fuzzer covers (a seed each)
FORMATS = ("ply_binary", "ply_ascii", "ply_big_endian", "sog_native", "sog_layered", "sog_v2_zip",
           "sog_v2_folder", "compressed_ply", "splat", "spz_v2", "spz_v3", "spz_v4", "lod")


# ----------------------------------------------------------------------------------------------- seeds

def sample_scene(n: int = 64, degree: int = 3):
    """The first ``n`` Gaussians of data/sample.ply (SH degree ``degree``)."""
    import sog
    return sog.load(SAMPLE).permute(torch.arange(n)).with_sh_degree(degree)


def write_big_endian_ply(scene, path: Path) -> None:
    """A binary big-endian 3DGS PLY with INRIA's extra ``nx ny nz`` properties."""
    from plyfile import PlyData, PlyElement

    n, k = len(scene), scene.shN.shape[1]
    cols = {"x": scene.means[:, 0], "y": scene.means[:, 1], "z": scene.means[:, 2]}
    cols.update({f"n{a}": torch.zeros(n) for a in "xyz"})
    cols.update({f"f_dc_{i}": scene.sh0[:, 0, i] for i in range(3)})
    rest = scene.shN.transpose(1, 2).reshape(n, 3 * k)
    cols.update({f"f_rest_{i}": rest[:, i] for i in range(3 * k)})
    cols["opacity"] = scene.opacities
    cols.update({f"scale_{i}": scene.scales[:, i] for i in range(3)})
    cols.update({f"rot_{i}": scene.quats[:, i] for i in range(4)})
    record = np.empty(n, dtype=[(name, ">f4") for name in cols])
    for name, value in cols.items():
        record[name] = value.numpy()
    PlyData([PlyElement.describe(record, "vertex")], byte_order=">").write(str(path))


def write_compressed_ply(scene, path: Path) -> None:
    """A PlayCanvas compressed PLY: chunks of 256 with bounds, packed 11-10-11 / 2+10-10-10 / 8888 words, 8-bit SH."""
    from plyfile import PlyData, PlyElement

    n = len(scene)
    chunks = (n + 255) // 256
    means, scales = scene.means.double().numpy(), scene.scales.double().numpy()
    chunk = np.zeros(chunks, dtype=[(f"{e}_{p}{a}", "<f4") for p in ("", "scale_") for e in ("min", "max")
                                    for a in "xyz"] + [(f"{e}_{c}", "<f4") for e in ("min", "max") for c in "rgb"])
    words = {name: np.zeros(n, np.uint32) for name in ("packed_position", "packed_rotation", "packed_scale",
                                                        "packed_color")}

    def pack(values, lo, hi):
        t = np.clip((values - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)
        return ((np.rint(t[:, 0] * 2047).astype(np.uint32) << 21) | (np.rint(t[:, 1] * 1023).astype(np.uint32) << 11)
                | np.rint(t[:, 2] * 2047).astype(np.uint32))

    colour = np.clip(0.5 + 0.28209479177387814 * scene.sh0[:, 0].double().numpy(), 0, 1)
    for c in range(chunks):
        sl = slice(256 * c, min(n, 256 * (c + 1)))
        for prefix, values in (("", means), ("scale_", scales)):
            lo, hi = values[sl].min(0), values[sl].max(0)
            for i, a in enumerate("xyz"):
                chunk[f"min_{prefix}{a}"][c], chunk[f"max_{prefix}{a}"][c] = lo[i], hi[i]
            words["packed_position" if not prefix else "packed_scale"][sl] = pack(values[sl], lo, hi)
        for i, ch in enumerate("rgb"):
            chunk[f"min_{ch}"][c], chunk[f"max_{ch}"][c] = 0.0, 1.0
    q = torch.nn.functional.normalize(scene.quats.double(), dim=1).numpy()
    largest = np.abs(q).argmax(1)
    q = q * np.where(q[np.arange(n), largest] < 0, -1, 1)[:, None]
    rot = largest.astype(np.uint32) << 30
    for shift, j in zip((20, 10, 0), range(3)):
        others = np.array([[i for i in range(4) if i != m] for m in range(4)])[largest][:, j]
        v = q[np.arange(n), others] * math.sqrt(2) * 0.5 + 0.5
        rot |= np.rint(np.clip(v, 0, 1) * 1023).astype(np.uint32) << shift
    words["packed_rotation"] = rot
    alpha = 1 / (1 + np.exp(-scene.opacities.double().numpy()))
    rgba = np.rint(np.clip(np.concatenate([colour, alpha[:, None]], 1), 0, 1) * 255).astype(np.uint32)
    words["packed_color"] = (rgba[:, 0] << 24) | (rgba[:, 1] << 16) | (rgba[:, 2] << 8) | rgba[:, 3]
    vertex = np.empty(n, dtype=[(name, "<u4") for name in words])
    for name, value in words.items():
        vertex[name] = value
    k = scene.shN.shape[1]
    rest = scene.shN.transpose(1, 2).reshape(n, 3 * k).double().numpy()
    sh = np.empty(n, dtype=[(f"f_rest_{i}", "u1") for i in range(3 * k)])
    for i in range(3 * k):
        sh[f"f_rest_{i}"] = np.clip(np.rint((rest[:, i] / 8 + 0.5) * 256 - 0.5), 0, 255).astype(np.uint8)
    PlyData([PlyElement.describe(chunk, "chunk"), PlyElement.describe(vertex, "vertex"),
             PlyElement.describe(sh, "sh")]).write(str(path))


def write_splat(scene, path: Path) -> None:
    from sog.io.splat import RECORD

    n = len(scene)
    rec = np.zeros(n, RECORD)
    rec["pos"] = scene.means.numpy()
    rec["scale"] = np.exp(scene.scales.numpy())
    colour = 0.5 + 0.28209479177387814 * scene.sh0[:, 0].numpy()
    alpha = 1 / (1 + np.exp(-scene.opacities.numpy()))
    rec["rgba"] = np.rint(np.clip(np.concatenate([colour, alpha[:, None]], 1), 0, 1) * 255).astype(np.uint8)
    q = torch.nn.functional.normalize(scene.quats, dim=1).numpy()
    rec["rot"] = np.rint(np.clip(q * 128 + 128, 0, 255)).astype(np.uint8)
    rec.tofile(path)


def spz_body(n: int, version: int, degree: int, seed: int = 0) -> tuple[bytes, list[bytes]]:
    """A 16-byte SPZ header and its attribute blocks (random bytes of the right sizes)."""
    from sog.splats import SH_REST_COUNT

    rng = np.random.default_rng(seed)
    k = SH_REST_COUNT[degree]
    sizes = [9 * n, n, 3 * n, 3 * n, (3 if version == 2 else 4) * n] + ([3 * k * n] if k else [])
    blocks = [rng.integers(0, 256, s, dtype=np.uint8).tobytes() for s in sizes]
    header = struct.pack("<IIIBBBB", 0x5053474E, version, n, degree, 12, 0, 0)
    return header, blocks


def write_spz(path: Path, n: int, version: int, degree: int = 1, seed: int = 0) -> None:
    header, blocks = spz_body(n, version, degree, seed)
    if version < 4:
        path.write_bytes(gzip.compress(header + b"".join(blocks), mtime=0))
        return
    import zstandard

    packed = [zstandard.ZstdCompressor().compress(b) for b in blocks]
    head = header[:15] + struct.pack("<BI", len(blocks), 32) + bytes(12)
    toc = b"".join(struct.pack("<QQ", len(p), len(b)) for p, b in zip(packed, blocks))
    path.write_bytes(head + toc + b"".join(packed))


def make_seeds(folder: Path, n: int = 64) -> dict[str, Path]:
    """One valid small file (or folder) per format in `FORMATS`, under ``folder``."""
    import sog
    from sog.codec.native import Layer, encode_layers
    from sog.grid import grid_shape
    from sog.io import write_container, write_ply

    folder.mkdir(parents=True, exist_ok=True)
    scene = sample_scene(n)
    seeds: dict[str, Path] = {}
    write_ply(scene, folder / "binary.ply")
    write_ply(scene, folder / "ascii.ply", ascii=True)
    write_big_endian_ply(scene, folder / "big_endian.ply")
    seeds.update(ply_binary=folder / "binary.ply", ply_ascii=folder / "ascii.ply",
                 ply_big_endian=folder / "big_endian.ply")
    native = sog.CompressOptions(profile="native", sort="morton", effort=0, profile_options={"layers": 1})
    sog.compress(scene, folder / "native.sog", native, quiet=True)
    half = n // 2
    layers = [Layer(scene.permute(torch.arange(a, b)), *grid_shape(b - a)[::-1], drops)
              for (a, b), drops in (((0, half), {}), ((half, n), {"means": 1, "scales": 1}))]
    meta, files = encode_layers(layers, sog.codec.native.Options(effort=0))
    write_container(meta, files, folder / "layered.sog", compress_meta=True)
    pc = sog.CompressOptions(profile="playcanvas", sort="morton", effort=0)
    sog.compress(scene, folder / "v2.sog", pc, quiet=True)
    sog.compress(scene, folder / "v2_folder", pc, quiet=True)
    seeds.update(sog_native=folder / "native.sog", sog_layered=folder / "layered.sog", sog_v2_zip=folder / "v2.sog",
                 sog_v2_folder=folder / "v2_folder")
    write_compressed_ply(scene, folder / "scene.compressed.ply")
    write_splat(scene, folder / "scene.splat")
    for version in (2, 3, 4):
        write_spz(folder / f"v{version}.spz", n, version)
    seeds.update(compressed_ply=folder / "scene.compressed.ply", splat=folder / "scene.splat",
                 spz_v2=folder / "v2.spz", spz_v3=folder / "v3.spz", spz_v4=folder / "v4.spz")
    lod = folder / "lod"
    lod.mkdir(exist_ok=True)
    sog.compress(scene, lod / "0_0", pc, quiet=True, overwrite=True)
    tree = {"bound": {"min": [-1, -1, -1], "max": [1, 1, 1]},
            "children": [{"lods": {"0": {"file": 0, "offset": 0, "count": half}}},
                         {"lods": {"0": {"file": 0, "offset": half, "count": n - half}}}]}
    (lod / "lod-meta.json").write_text(json.dumps({"lodLevels": 1, "filenames": ["0_0/meta.json"], "tree": tree}))
    seeds["lod"] = lod / "lod-meta.json"
    return seeds


# ------------------------------------------------------------------------------------------- mutations

HUGE = [0, -1, 1, 2 ** 31, 2 ** 32 + 1, 2 ** 63, 2 ** 70, 10 ** 20, 1e19, 1e300, 0.5, -1e20]
JUNK = [[], {}, "x", "../../etc/passwd", True, None, [1, 2, 3], {"a": 1}]


def _flip_bits(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _bytes_edit(data: bytes, rng: random.Random) -> bytes:
    """One of: bit flips, random bytes, truncation, insertion, a zeroed run, a duplicated run."""
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    kind = rng.randrange(6)
    n = len(data)
    if kind == 0:
        return _flip_bits(data, rng)
    if kind == 1:
        b = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            b[rng.randrange(n)] = rng.randrange(256)
        return bytes(b)
    if kind == 2:
        return data[:rng.randrange(n)]
    i = rng.randrange(n)
    if kind == 3:
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[i:]
    j = min(n, i + rng.randint(1, 256))
    if kind == 4:
        return data[:i] + bytes(j - i) + data[j:]
    return data[:j] + data[i:j] * rng.randint(1, 4) + data[j:]


def _paths(node, prefix=()):
    """Every (path, value) in a JSON document, without recursion."""
    out, stack = [], [(prefix, node)]
    while stack:
        path, value = stack.pop()
        out.append((path, value))
        if isinstance(value, dict):
            stack.extend((path + (k,), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((path + (i,), v) for i, v in enumerate(value[:64]))
    return out


def _set(doc, path, value):
    if not path:
        return value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _delete(doc, path):
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


def edit_json(doc, rng: random.Random):
    """One field edit of a JSON document (a deep copy is edited)."""
    doc = json.loads(json.dumps(doc))
    paths = _paths(doc)
    path, value = rng.choice(paths)
    kind = rng.randrange(10)
    if kind == 0 and path:
        return _delete(doc, path)
    if kind == 1:
        return _set(doc, path, rng.choice([math.inf, -math.inf, math.nan]))
    if kind == 2:
        return _set(doc, path, rng.choice(JUNK))
    if kind == 3:  # deep nesting, spliced in as text (json.dumps itself would recurse)
        return _Deep(_set(doc, path, "__DEEP__"), value, rng.choice([50, 300, 3000, 100_000]))
    if kind == 4 and isinstance(value, list):
        cut = value[:rng.randrange(len(value) + 1)] if rng.random() < 0.5 else value + [rng.choice(HUGE + JUNK)] * \
            rng.choice([1, 10, 1000])
        return _set(doc, path, cut)
    if kind == 5 and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _set(doc, path, value * rng.choice([2, 10, 1000, -1]) + rng.choice([0, 1]))
    if kind == 6 and isinstance(value, dict) and "children" in value:
        child = {"lods": {"0": {"file": 0, "offset": 0, "count": 1}}}
        return _set(doc, path, {**value, "children": [child] * rng.choice([10, 1000, 200_000])})
    if kind == 7 and isinstance(value, str):
        return _set(doc, path, rng.choice(["", "x" * 300, "../meta.json", "/etc/passwd", value + "x", "lod-meta.json"]))
    return _set(doc, path, rng.choice(HUGE + [math.inf, math.nan]))


@dataclass
class _Deep:
    doc: object
    value: object
    depth: int


def _dump(doc) -> bytes:
    if isinstance(doc, _Deep):
        inner = "[" * doc.depth + json.dumps(doc.value, allow_nan=True) + "]" * doc.depth
        return json.dumps(doc.doc, allow_nan=True).replace('"__DEEP__"', inner, 1).encode()
    return json.dumps(doc, allow_nan=True).encode()


def _ply_header_edit(data: bytes, rng: random.Random) -> bytes:
    end = data.find(b"end_header")
    if end < 0:
        return _bytes_edit(data, rng)
    end = data.index(b"\n", end) + 1
    lines = data[:end].decode("latin-1").split("\n")
    body = data[end:]
    kind = rng.randrange(6)
    index = [i for i, line in enumerate(lines) if line.startswith(("element", "property", "format"))]
    i = rng.choice(index)
    words = lines[i].split()
    if kind == 0 and words[0] == "element":
        words[2] = str(rng.choice(HUGE[:9] + ["abc", int(words[2]) + 1, int(words[2]) - 1]))
    elif kind == 1 and words[0] == "property" and words[1] != "list":
        words[1] = rng.choice(["uchar", "double", "short", "int", "float", "list uchar int"])
    elif kind == 2 and words[0] == "property":
        words = []
    elif kind == 3:
        lines[1] = "format " + rng.choice(["ascii", "binary_big_endian", "binary_little_endian", "binary_x"]) + " 1.0"
    elif kind == 4:
        words = ["comment", "x" * rng.choice([100, 200_000, 2_000_000])] + [lines[i]]
        lines[i] = " ".join(words[:2]) + "\n" + words[2]
        words = None
    else:
        words[-1] = rng.choice(["x", "f_rest_99", "rot_0", "opacity", ""])
    if words is not None:
        lines[i] = " ".join(words)
    return "\n".join(lines).encode("latin-1") + body


def _zip_members(path: Path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info, zf.read(info)) for info in zf.infolist()]


def _write_zip(path: Path, members: list[tuple[zipfile.ZipInfo, bytes]]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in members:
            zf.writestr(info, data)


def _big_image(side: int = 4096) -> bytes:
    """A PNG whose header declares ``side`` x ``side`` RGBA pixels and whose data holds one zero row: a few
    hundred bytes that a decoder would allocate ``4 side^2`` bytes for."""
    import zlib

    data = zlib.compress(bytes(side * 4 + 1), 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


_BIG_IMAGE: list[bytes] = []


def _sog_edit(members: list[tuple[zipfile.ZipInfo, bytes]], rng: random.Random):
    """An edit of a container's files: meta field, plane swap/removal/huge image, unused bomb entry."""
    names = [info.filename for info, _ in members]
    meta_i = names.index("meta.json")
    kind = rng.randrange(10)
    members = list(members)
    if kind <= 4:
        info, data = members[meta_i]
        members[meta_i] = (info, _dump(edit_json(json.loads(data), rng)))
    elif kind == 5:
        planes = [i for i in range(len(members)) if i != meta_i]
        i, j = rng.choice(planes), rng.choice(planes)
        members[i] = (members[i][0], members[j][1])
    elif kind == 6:
        planes = [i for i in range(len(members)) if i != meta_i]
        del members[rng.choice(planes)]
    elif kind == 7:
        if not _BIG_IMAGE:
            _BIG_IMAGE.append(_big_image())
        planes = [i for i in range(len(members)) if i != meta_i]
        i = rng.choice(planes)
        members[i] = (members[i][0], _BIG_IMAGE[0])
    elif kind == 8:
        info = zipfile.ZipInfo("unused.bin", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        members.append((info, bytes(32 << 20)))
    else:
        i = rng.randrange(len(members))
        members[i] = (members[i][0], _bytes_edit(members[i][1], rng))
    return members


def mutate(fmt: str, seed_path: Path, out: Path, rng: random.Random) -> Path:
    """Write one mutation of the seed of format ``fmt`` under the fresh folder ``out``; return the path to load."""
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "sog_v2_folder":
        target = out / "scene"
        shutil.copytree(seed_path, target)
        members = [(zipfile.ZipInfo(p.name), p.read_bytes()) for p in sorted(seed_path.iterdir())]
        for p in target.iterdir():
            p.unlink()
        for info, data in _sog_edit(members, rng):
            (target / info.filename).write_bytes(data)
        return target
    if fmt == "lod":
        shutil.copytree(seed_path.parent, out / "lod")
        target = out / "lod" / "lod-meta.json"
        doc = json.loads(seed_path.read_text())
        target.write_bytes(_bytes_edit(_dump(doc), rng) if rng.random() < 0.2 else _dump(edit_json(doc, rng)))
        return target
    target = out / seed_path.name
    data = seed_path.read_bytes()
    structured = rng.random() < 0.6
    if fmt.startswith("sog_") and structured:
        members = _sog_edit(_zip_members(seed_path), rng)
        if rng.random() < 0.2:  # a deflated meta.json with flipped bytes
            members = [(info, d) for info, d in members]
            info = members[[m[0].filename for m in members].index("meta.json")][0] if any(
                m[0].filename == "meta.json" for m in members) else None
            if info is not None:
                info.compress_type = zipfile.ZIP_DEFLATED
        _write_zip(target, members)
        if rng.random() < 0.3:
            target.write_bytes(_flip_bits(target.read_bytes(), rng))
        return target
    if fmt.startswith("ply") or fmt == "compressed_ply":
        data = _ply_header_edit(data, rng) if structured else _bytes_edit(data, rng)
    elif fmt.startswith("spz") and structured:
        data = _spz_edit(data, fmt, rng)
    else:
        data = _bytes_edit(data, rng)
    target.write_bytes(data)
    return target


def _spz_edit(data: bytes, fmt: str, rng: random.Random) -> bytes:
    gz = fmt != "spz_v4"
    raw = bytearray(gzip.decompress(data) if gz else data)
    kind = rng.randrange(5)
    if kind == 0:
        struct.pack_into("<I", raw, 8, rng.choice([0, 1, 65, 10 ** 6, 50_000_000, 2 ** 32 - 1]))
    elif kind == 1:
        struct.pack_into("<I", raw, 4, rng.choice([0, 1, 2, 3, 4, 5, 2 ** 31]))
    elif kind == 2:
        raw[12] = rng.choice([0, 1, 2, 3, 4, 255])
    elif kind == 3:
        raw[13] = rng.choice([0, 12, 24, 31, 32, 64, 255])
    elif not gz and len(raw) >= 32:
        i = rng.randrange(6)
        struct.pack_into("<QQ", raw, 32 + 16 * i, rng.choice([0, 1, 2 ** 40]), rng.choice([0, 1, 2 ** 40, 2 ** 63]))
    else:
        raw += bytes(rng.choice([1, 1000, 30 << 20]))  # trailing padding inside the gzip stream
    return gzip.compress(bytes(raw), compresslevel=1, mtime=0) if gz else bytes(raw)


# --------------------------------------------------------------------------------------------- running

class CaseTimeout(BaseException):
    """Raised by the per-case alarm (a BaseException, so no reader's ``except Exception`` swallows it)."""


@dataclass
class Outcome:
    kind: str        #: error | valid | escape | hang | memory
    seconds: float
    peak_mb: float   #: peak RSS growth during the case (MB; 0 where it cannot be measured)
    message: str


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _status_mb(key: str) -> float:
    """A memory line of /proc/self/status (``VmHWM``: peak RSS, ``VmRSS``: RSS now) in MB; 0 where there is none."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_case(path: Path, seconds: float = 10.0, memory_mb: float = 1024.0) -> Outcome:
    """Load ``path`` through sog's readers within ``seconds`` and ``memory_mb`` of RSS growth."""
    import sog.io
    from sog.errors import SogError

    read_checked = getattr(sog.io, "read_checked", sog.io.load)  # older sog: load is the reader

    measured = _reset_peak()
    base = _status_mb("VmRSS")
    old = signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    try:
        try:
            try:
                signal.setitimer(signal.ITIMER_REAL, seconds)  # one shot
                splats = read_checked(path)
                kind, message = "valid", f"{len(splats)} Gaussians"
                _check_valid(splats)
            except SogError as exc:
                kind, message = "error", str(exc)
            except CaseTimeout:
                raise
            except BaseException as exc:  # noqa: BLE001 - counting what escapes is the point
                if isinstance(exc, KeyboardInterrupt):
                    raise
                kind, message = "escape", f"{type(exc).__name__}: {str(exc)[:200]}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CaseTimeout:  # also when the alarm fires just before it is disarmed
            kind, message = "hang", f"over {seconds} s"
    finally:
        signal.signal(signal.SIGALRM, old)
    elapsed = time.perf_counter() - t0
    peak = max(0.0, _status_mb("VmHWM") - base) if measured else 0.0
    if kind in ("error", "valid") and elapsed > seconds:
        kind, message = "hang", f"{elapsed:.1f} s: {message}"
    if kind in ("error", "valid") and peak > memory_mb:
        kind, message = "memory", f"{peak:.0f} MB: {message}"
    if "\n" in message and kind == "error":
        kind, message = "escape", "multi-line error: " + message
    return Outcome(kind, elapsed, peak, message)


def _alarm(signum, frame):
    raise CaseTimeout()


def _check_valid(splats) -> None:
    n = len(splats)
    assert n > 0
    shapes = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,), "sh0": (n, 1, 3)}
    for name, shape in shapes.items():
        tensor = getattr(splats, name)
        assert tuple(tensor.shape) == shape, name
        assert bool(torch.isfinite(tensor).all()), name
    assert splats.shN.ndim == 3 and splats.shN.shape[0] == n and splats.shN.shape[2] == 3
    assert bool(torch.isfinite(splats.shN).all())


def fuzz(seeds: dict[str, Path], work: Path, cases: int, seed: int = 0, formats=FORMATS, seconds: float = 10.0,
         memory_mb: float = 1024.0, progress=None) -> dict[str, dict]:
    """``cases`` mutations per format; returns per format the counts of each outcome and the first few
    escapes, hangs and memory cases (with the mutation's seed, to replay it)."""
    results = {}
    for fmt in formats:
        counts = {"cases": 0, "error": 0, "valid": 0, "escape": 0, "hang": 0, "memory": 0}
        bad, slowest, peak = [], 0.0, 0.0
        for i in range(cases):
            rng = random.Random(f"{seed}:{fmt}:{i}")
            case_dir = work / f"{fmt}_{i}"
            try:
                path = mutate(fmt, seeds[fmt], case_dir, rng)
                outcome = run_case(path, seconds, memory_mb)
            finally:
                shutil.rmtree(case_dir, ignore_errors=True)
            counts["cases"] += 1
            counts[outcome.kind] += 1
            slowest, peak = max(slowest, outcome.seconds), max(peak, outcome.peak_mb)
            if outcome.kind in ("escape", "hang", "memory") and len(bad) < 20:
                bad.append({"case": i, "kind": outcome.kind, "message": outcome.message})
            if progress:
                progress(fmt, i, outcome)
        results[fmt] = {**counts, "slowest_s": round(slowest, 3), "peak_mb": round(peak, 1), "failures": bad}
    return results
