"""The ``.sog`` container: a zip of ``meta.json`` plus image planes, or the same files in a folder.

The bundled form is an uncompressed (stored) zip, as PlayCanvas writes it: the planes are
already compressed images. ``compress_meta`` deflates the ``meta.json`` entry (its codebooks are
long lists of floats: 10 KB -> 4 KB on a 114K-Gaussian scene); a profile asks for it with its
``COMPRESS_META``. The unbundled form is a folder holding ``meta.json`` and the planes.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Callable

from ..errors import SogError
from .atomic import atomic_path
from .limits import LIMITS, Limits, check_name, parse_json

META = "meta.json"


def _entry(name: str, deflate: bool = False) -> zipfile.ZipInfo:
    """A zip entry with a fixed date (1980-01-01), so that the same scene and options give the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _meta_bytes(meta: dict) -> bytes:
    return json.dumps(meta, separators=(",", ":")).encode()


def _write_zip(fh, meta_bytes: bytes, files: dict[str, bytes], compress_meta: bool) -> None:
    """The bundled form into the binary file ``fh``: ``meta.json`` first, then ``files`` in their order."""
    zf = zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED)
    try:
        zf.writestr(_entry(META, compress_meta), meta_bytes)
        for name, data in files.items():
            zf.writestr(_entry(name), data)
    except BaseException:
        # abandoned, not closed: a signal (`Interrupted`) inside writestr leaves an entry open, and close() (also
        # the one in ZipFile.__del__) would raise ValueError in its place. Without its file ZipFile writes nothing
        # more; the half-written file is the caller's to discard (an atomic temporary)
        zf.fp = None
        raise
    zf.close()


def container_size(meta: dict, files: dict[str, bytes], *, bundle: bool = True, compress_meta: bool = False) -> int:
    """The bytes `write_container` would write for ``meta`` and ``files`` (the zip with its headers and
    ``meta.json``, or for a folder ``meta.json`` plus the planes), without writing anything: what the rate search
    counts, so that the size it chooses on is the written file's."""
    meta_bytes = _meta_bytes(meta)
    if not bundle:
        return len(meta_bytes) + sum(len(d) for d in files.values())
    with io.BytesIO() as fh:
        _write_zip(fh, meta_bytes, files, compress_meta)
        return fh.tell()


def write_container(meta: dict, files: dict[str, bytes], path: str | os.PathLike, *,
                    bundle: bool | None = None, overwrite: bool = False, compress_meta: bool = False) -> int:
    """Write ``meta`` and ``files`` to ``path`` atomically; return the bytes written.

    ``bundle=None`` picks the zip form for a ``.sog`` path and the folder form otherwise
    (a folder path, or a path ending in ``meta.json`` whose folder receives the planes).
    """
    path = Path(path)
    meta_bytes = _meta_bytes(meta)
    if bundle is None:
        bundle = path.suffix.lower() == ".sog"
    if bundle:
        with atomic_path(path, overwrite) as tmp:
            with open(tmp, "wb") as fh:
                _write_zip(fh, meta_bytes, files, compress_meta)
        return path.stat().st_size
    folder = path.parent if path.name == META else path
    if overwrite and folder.is_dir() and not (folder / META).is_file():
        raise SogError(f"refusing to replace folder {folder}: it is not a SOG folder (no meta.json)")
    with atomic_path(folder, overwrite, directory=True) as tmp:
        (tmp / META).write_bytes(meta_bytes)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return len(meta_bytes) + sum(len(d) for d in files.values())


def read_container(path: str | os.PathLike, limits: Limits = LIMITS) -> tuple[dict, Callable[[str], bytes], int]:
    """Open a ``.sog`` zip, a folder with ``meta.json``, or a ``meta.json`` path.

    Returns ``(meta, read(name) -> bytes, total_bytes)``. Only ``meta.json`` is read here; ``read`` reads one
    named entry when asked (so an unrelated or unused entry, however large, is never inflated), each at most
    ``limits.max_entry_bytes`` and, when deflated, at most ``limits.inflated_bytes`` of its compressed size
    (checked while inflating, not from the header); a corrupt entry (bad CRC, broken deflate stream) is a
    `SogError` naming the file and the entry. ``total_bytes``: the zip's size, or for a folder the bytes of
    ``meta.json`` and of the files it names.
    """
    path = Path(path)
    if not path.exists():
        raise SogError(f"{path}: no such file or folder")
    if path.is_dir() or path.name == META:
        folder = path if path.is_dir() else path.parent
        if not (folder / META).is_file():
            raise SogError(f"{folder}: folder has no meta.json")
        meta = _parse_meta(_read_file(folder / META, limits.max_json_bytes, f"{folder / META}"), folder / META,
                           limits)

        def read(name: str) -> bytes:
            check_name(name, f"{folder / META}: file name")
            file = folder / name
            if not file.is_file():
                raise SogError(f"{folder}: SOG folder is missing {name}")
            return _read_file(file, limits.max_entry_bytes, str(file))

        total = (folder / META).stat().st_size + sum(
            (folder / name).stat().st_size for name in named_files(meta) if (folder / name).is_file())
        return meta, read, total
    entries = _zip_entries(path)
    if META not in entries:
        raise SogError(f"{path}: .sog has no meta.json")
    meta = _parse_meta(_read_entry(path, entries[META], limits.max_json_bytes, limits), f"{path}: meta.json",
                       limits)

    def read(name: str) -> bytes:
        if not isinstance(name, str) or name not in entries:
            raise SogError(f"{path}: .sog is missing {name}")
        return _read_entry(path, entries[name], limits.max_entry_bytes, limits)

    return meta, read, os.path.getsize(path)


def named_files(meta) -> list[str]:
    """Every string in ``meta`` (any depth, no recursion) that could be a plane file name, in order."""
    names, stack = [], [meta]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, str) and node and "/" not in node and "\\" not in node and "\x00" not in node \
                and node not in (".", "..") and "." in node and len(node) <= 255:
            names.append(node)
    return list(dict.fromkeys(names))


def _parse_meta(data: bytes, what, limits: Limits) -> dict:
    meta = parse_json(data, f"{what}", limits.max_json_bytes, limits)
    if not isinstance(meta, dict):
        raise SogError(f"{what} is not a JSON object")
    return meta


def _read_file(file: Path, cap: int, what: str) -> bytes:
    try:
        size = file.stat().st_size
        if size > cap:
            raise SogError(f"{what} is {size:,} bytes, more than the {cap:,} sog reads for one file")
        with open(file, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise SogError(f"{what}: cannot read ({exc.strerror or exc})") from None
    if len(data) > cap:
        raise SogError(f"{what} is more than the {cap:,} bytes sog reads for one file")
    return data


def _zip_entries(path: Path) -> dict[str, zipfile.ZipInfo]:
    """The zip's file entries by base name (each name once), read from its central directory only."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [info for info in zf.infolist() if not info.is_dir()]
    except zipfile.BadZipFile as exc:
        raise SogError(f"{path}: not a valid .sog zip ({exc})") from None
    except Exception as exc:  # a damaged central directory: struct, unicode, overflow, OS errors
        raise SogError(f"{path}: corrupt .sog zip ({type(exc).__name__}: {exc})") from None
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename.replace("\\", "/").rsplit("/", 1)[-1]
        if name in entries:
            raise SogError(f"{path}: .sog zip holds two entries named {name!r}")
        entries[name] = info
    return entries


def _read_entry(path: Path, info: zipfile.ZipInfo, cap: int, limits: Limits) -> bytes:
    """One zip entry, inflated in pieces and stopped as soon as it passes ``cap`` or the inflate-ratio limit."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        cap = min(cap, limits.inflated_bytes(info.compress_size))
    if info.file_size > cap:
        raise SogError(f"{path}: entry {name} declares {info.file_size:,} bytes, more than the {cap:,} sog reads")
    out = bytearray()
    try:
        with zipfile.ZipFile(path) as zf, zf.open(info) as fh:
            while piece := fh.read(1 << 20):
                out += piece
                if len(out) > cap:
                    raise SogError(f"{path}: entry {name} inflates to more than {cap:,} bytes")
    except SogError:
        raise
    except Exception as exc:  # zlib.error, bad CRC (BadZipFile), EOFError, unsupported method, encryption ...
        raise SogError(f"{path}: corrupt .sog zip entry {name} ({type(exc).__name__}: {exc})") from None
    return bytes(out)
