"""Reading and writing scenes: `load` any supported file, `save` a PLY."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ..errors import SogError, is_out_of_memory
from ..splats import Splats
from .container import read_container, write_container
from .limits import LIMITS, Limits, check_count, check_magnitudes
from .ply import read_ply, write_ply
from .splat import read_splat

__all__ = ["load", "read_checked", "save", "read_ply", "write_ply", "read_splat", "read_container", "write_container",
           "detect_format", "as_sog_error"]


def detect_format(path: str | os.PathLike) -> str:
    """One of ``ply``, ``splat``, ``sog`` (zip, folder or meta.json), ``lod`` (lod-meta.json), ``spz``."""
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
    if head[:2] == b"\x1f\x8b" or path.suffix.lower() == ".spz":
        return "spz"
    if path.suffix.lower() == ".splat":
        return "splat"
    raise SogError(f"{path}: not a Gaussian-splat file sog can read (expected .ply, .splat, .sog, .spz, "
                   "a SOG folder/meta.json or lod-meta.json)")


def load(path: str | os.PathLike, limits: Limits = LIMITS) -> Splats:
    """Read any supported scene file into `Splats` (validated: non-empty, finite, within `limits`).

    Every problem with the file is a `SogError` naming it: the readers check declared sizes against the
    data and against `sog.io.limits` before they allocate (`read_checked`), and, as a last resort, any
    decoder error they let through (zlib, image, gzip, zstd, struct, JSON, plyfile) becomes one too."""
    with as_sog_error(path):
        return read_checked(path, limits)


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


def read_checked(path: str | os.PathLike, limits: Limits = LIMITS) -> Splats:
    """`load` without its last resort: the format's reader, then the count, finiteness and magnitude checks.
    Any exception but `SogError` from here is a reader bug (the fuzzer, scripts/fuzz_readers.py, counts them)."""
    return checked(_read(path, detect_format(path), limits), path, limits)


def checked(splats: Splats, path: str | os.PathLike, limits: Limits = LIMITS) -> Splats:
    """``splats`` read from ``path``, once its count, finiteness and magnitudes pass (else a `SogError`)."""
    check_count(len(splats), str(path), limits)
    return check_magnitudes(splats.validate(str(path)), str(path), limits)


def _read(path, fmt: str, limits: Limits) -> Splats:
    if fmt == "ply":
        return read_ply(path)
    if fmt == "splat":
        return read_splat(path)
    if fmt == "lod":
        from .lod import read_lod_meta
        return read_lod_meta(path)
    if fmt == "spz":
        from .spz import read_spz
        return read_spz(path)
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
