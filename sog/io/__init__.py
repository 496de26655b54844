"""Scene files: every format's reader and writer, input limits, atomic outputs; `load` any file (`detect_format`
picks the reader), `save` a PLY, and `output_format` / `WRITERS`, the one registry of what sog writes (an output's
extension picks the writer).

Streamed LOD output: `lod_writer` beside `lod`'s reader, both shaped by `lod_format`.
"""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SogError, is_out_of_memory
from ..splats import Splats
from .container import container_size, read_container, write_container
from .limits import LIMITS, Limits, check_count, check_magnitudes
from .ply import read_ply, write_ply
from .splat import read_splat

__all__ = ["load", "read_checked", "save", "read_ply", "write_ply", "read_splat", "read_container", "write_container",
           "container_size", "detect_format", "as_sog_error", "WRITERS", "Writer", "output_format", "get_writer"]


def detect_format(path: str | os.PathLike) -> str:
    """One of ``ply``, ``splat``, ``sog`` (zip, folder or meta.json), ``lod`` (lod-meta.json), ``spz``, ``glb``."""
    path = Path(path)
    if not path.exists():
        raise SogError(f"{path}: no such file or folder")
    if path.is_dir() or path.name == "meta.json":
        return "sog"
    if path.name.endswith("lod-meta.json"):
        return "lod"
    if not path.is_file():
        raise SogError(f"{path}: not a regular file or folder")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise SogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head[:3] == b"ply":
        return "ply"
    if head[:4] == b"PK\x03\x04":
        return "sog"
    if head[:4] == b"glTF":
        return "glb"
    if head[:2] == b"\x1f\x8b" or path.suffix.lower() == ".spz":
        return "spz"
    if path.suffix.lower() == ".splat":
        return "splat"
    raise SogError(f"{path}: not a Gaussian-splat file sog can read (expected .ply, .splat, .sog, .spz, .glb, "
                   "a SOG folder/meta.json or lod-meta.json)")


def load(path: str | os.PathLike, limits: Limits = LIMITS, *, lod: int = 0) -> Splats:
    """Read any supported scene file into `Splats` (validated: non-empty, finite, within `limits`); ``lod``: the
    level of detail of a ``lod-meta.json`` (0, the finest, by default; other formats have only level 0).

    Every problem with the file is a `SogError` naming it: the readers check declared sizes against the
    data and against `sog.io.limits` before they allocate (`read_checked`), and, as a last resort, any
    decoder error they let through (zlib, image, gzip, zstd, struct, JSON, plyfile) becomes one too."""
    with as_sog_error(path):
        return read_checked(path, limits, lod=lod)


@contextmanager
def as_sog_error(path: str | os.PathLike):
    """Reading ``path`` inside this block: any decoder's own error (zlib, image, gzip, zstd, struct, JSON,
    plyfile) on data the checks let through, and running out of memory, become one `SogError` naming the file."""
    try:
        yield
    except SogError:
        raise
    except MemoryError:
        raise SogError(f"{path}: not enough memory to read this file") from None
    except RuntimeError as exc:
        if is_out_of_memory(exc):  # torch's own out-of-memory error is no sign of a malformed file
            raise SogError(f"{path}: not enough memory to read this file ({_one_line(exc)})") from None
        raise SogError(f"{path}: malformed file ({type(exc).__name__}: {_one_line(exc)})") from None
    except RecursionError:
        raise SogError(f"{path}: file is nested too deeply") from None
    except Exception as exc:  # a decoder's own error on data the checks let through
        raise SogError(f"{path}: malformed file ({type(exc).__name__}: {_one_line(exc)})") from None


def read_checked(path: str | os.PathLike, limits: Limits = LIMITS, *, lod: int = 0) -> Splats:
    """`load` without its last resort: the format's reader, then the count, finiteness and magnitude checks.
    Any exception but `SogError` from here is a reader bug (the fuzzer, tests/fuzz_readers.py, counts them)."""
    fmt = detect_format(path)
    if isinstance(lod, bool) or not isinstance(lod, int) or lod < 0 or (lod and fmt != "lod"):
        raise SogError(f"{path}: level of detail {lod!r:.20} (a {fmt} file has only level 0; a lod-meta.json has "
                       "levels 0, 1, ...)")
    return checked(_read(path, fmt, limits, lod), path, limits)


def checked(splats: Splats, path: str | os.PathLike, limits: Limits = LIMITS) -> Splats:
    """``splats`` read from ``path``, once its count, finiteness and magnitudes pass (else a `SogError`)."""
    check_count(len(splats), str(path), limits)
    return check_magnitudes(splats.validate(str(path)), str(path), limits)


def _read(path, fmt: str, limits: Limits, lod: int = 0) -> Splats:
    if fmt == "ply":
        return read_ply(path)
    if fmt == "splat":
        return read_splat(path)
    if fmt == "lod":
        from .lod import read_lod_meta
        return read_lod_meta(path, lod)
    if fmt == "spz":
        from .spz import read_spz
        return read_spz(path)
    if fmt == "glb":
        from .glb import read_glb
        return read_glb(path)
    from ..codec import decode_container
    from .sog_meta import open_sog
    meta, read, _ = open_sog(path, limits)
    return decode_container(meta, read)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def save(splats: Splats, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write `Splats` to a PLY file (the only float format sog writes)."""
    write_ply(splats, path, overwrite=overwrite)


@dataclass(frozen=True)
class Writer:
    """One output format: the file-name endings that choose it and the function that writes it.

    ``function`` is ``"module:function"`` with the signature ``fn(splats, path, *, overwrite=False, **options)``
    (writing atomically: all or nothing), imported on first use; None for the SOG forms, which a codec profile
    encodes (`sog.pipeline.compress`; streamed SOG's chunks too)."""

    endings: tuple[str, ...]
    function: str | None
    summary: str


#: output format -> its writer; a new format is one module beside its reader plus one line here
WRITERS: dict[str, Writer] = {
    "sog": Writer((".sog",), None, "SOG zip (the codec profiles; PlayCanvas reads v2)"),
    "sog-folder": Writer((), None, "unbundled SOG: a folder of meta.json and image planes (a path with no "
                                   "extension, or .../meta.json)"),
    "spz": Writer((".spz",), "sog.io.spz_writer:write_spz",
                  "Niantic SPZ v4 (zstd; v3 on request), per-scene quantisation"),
    "compressed-ply": Writer((".compressed.ply",), "sog.io.compressed_ply_writer:write_compressed_ply",
                             "PlayCanvas/SuperSplat compressed PLY: chunks of 256, packed words, 8-bit SH"),
    "glb": Writer((".glb",), "sog.io.glb_writer:write_glb", "binary glTF with KHR_gaussian_splatting (float32)"),
    "lod": Writer(("lod-meta.json",), None, "PlayCanvas streamed SOG: lod-meta.json over chunks (SOG folders) at "
                                            "--lod levels of detail (sog.io.lod_writer)"),
    "ply": Writer((".ply",), "sog.io.ply:write_ply", "plain 3DGS PLY, float32 (convert/decompress only)"),
}

#: formats that hold the scene uncompressed: `compress` refuses them (use `sog convert` or `sog decompress`)
UNCOMPRESSED = ("ply",)


def output_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The name in `WRITERS` of the format ``path`` is written in: ``format`` when given, else the longest
    registered ending of the file name (``.compressed.ply`` before ``.ply``); ``meta.json`` or a name without an
    extension is the SOG folder. Any other extension is a `SogError` (before anything is written)."""
    if format is not None:
        if format not in WRITERS:
            raise SogError(f"unknown output format {format!r} (choose from {', '.join(WRITERS)})")
        return format
    name = Path(path).name.lower()
    if name == "meta.json":
        return "sog-folder"
    found = [(len(end), fmt) for fmt, writer in WRITERS.items() for end in writer.endings if name.endswith(end)]
    if found:
        return max(found)[1]
    suffix = Path(path).suffix
    if not suffix:
        return "sog-folder"
    endings = ", ".join(end for writer in WRITERS.values() for end in writer.endings)
    raise SogError(f"{path}: sog cannot write {suffix} files (it writes {endings}, or a SOG folder: a path with no "
                   "extension or .../meta.json; --format chooses one)")


def get_writer(format: str):
    """The function writing ``format`` (a name in `WRITERS` with a writer function)."""
    module, func = WRITERS[format].function.split(":")
    return getattr(importlib.import_module(module), func)
