"""Write outputs all-or-nothing, and never at the cost of an input.

* An output is written to a temporary sibling first, then renamed into place; on any exception, a
  ``KeyboardInterrupt`` or the CLI's SIGTERM included, the temporary file or folder is removed, so a failed or
  interrupted run leaves neither a partial output nor a temporary file.
* ``--force`` replaces only a regular file or a folder sog writes (a SOG folder: ``meta.json`` and image
  planes, nothing else, `is_sog_folder`; for `sog export-html` also one of its own page folders), never a
  FIFO, a device node, a socket or a symbolic link (`replaceable`). A folder is replaced by renaming it aside,
  renaming the new output in and only then deleting the old one, so ``--force`` can never delete a folder of
  other files.
* `check_not_input`: the output may not be an input, hold one, or lie inside an input SOG folder.
* Temporary names (``.NAME.PID-RANDOM.tmp``, and ``.NAME.PID-RANDOM.old`` for an old folder set aside) are
  chosen before anything is created, so a signal at any moment leaves nothing behind; what a run killed outright
  (SIGKILL, power loss) left is cleaned by the next run writing the same output (`recover_stale`): its
  temporaries are deleted and an old output it had set aside is put back. Only names of this form whose process
  is gone are touched.
* A folder that cannot be written (read-only, missing, full disk) is a `SogError` naming it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import SogError

#: the files a SOG folder holds besides meta.json (the image planes)
PLANE_SUFFIXES = (".webp", ".png")
_MAX_SOG_FOLDER_ENTRIES = 4096


def is_sog_folder(folder: str | os.PathLike) -> bool:
    """True for a real folder holding ``meta.json`` and otherwise only image planes (no subfolders, no links)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    has_meta = False
    try:
        for i, entry in enumerate(os.scandir(folder)):
            if i >= _MAX_SOG_FOLDER_ENTRIES or entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                return False
            if entry.name == "meta.json":
                has_meta = True
            elif not entry.name.lower().endswith(PLANE_SUFFIXES):
                return False
    except OSError:
        return False
    return has_meta


FolderCheck = Callable[[Path], bool]


def replaceable(path: str | os.PathLike, folder_ok: FolderCheck = is_sog_folder) -> bool:
    """True when ``--force`` may replace ``path``: a regular file, or a folder that ``folder_ok`` recognises as
    sog's own output (default: a SOG folder). Never a FIFO, device node, socket or symbolic link. Only asks
    (``lstat``); nothing is opened."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if stat.S_ISREG(mode):
        return True
    return stat.S_ISDIR(mode) and folder_ok(Path(path))


def _sibling(path: Path, suffix: str) -> Path:
    """A fresh name next to ``path`` for this process: ``.NAME.PID-RANDOM`` + ``suffix``."""
    return path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a pid: leave it alone
    return True


def recover_stale(path: str | os.PathLike) -> None:
    """Clean what a killed run writing ``path`` left next to it: delete its ``.NAME.PID-RANDOM.tmp`` files and
    folders, and put back an old output it had set aside (``.NAME.PID-RANDOM.old/NAME``) when ``path`` is missing
    (else delete it). Only entries of exactly that form, not links, whose process is no longer running."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d{{1,10}})-[0-9a-f]{{8}}\.(tmp|old)")
    try:
        entries = [e for e in os.scandir(path.parent) if pattern.fullmatch(e.name)]
    except OSError:
        return
    for entry in entries:
        pid, kind = pattern.fullmatch(entry.name).groups()
        if _alive(int(pid)) or entry.is_symlink():
            continue
        stale = Path(entry.path)
        with contextlib.suppress(OSError):
            if kind == "old" and entry.is_dir(follow_symlinks=False):
                kept = stale / path.name
                if kept.exists() and not kept.is_symlink() and not (path.exists() or path.is_symlink()):
                    os.rename(kept, path)
                shutil.rmtree(stale)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(stale)
            else:
                stale.unlink()


def check_output(path: str | os.PathLike, overwrite: bool, folder_ok: FolderCheck = is_sog_folder) -> Path:
    """Refuse an existing output unless ``overwrite`` and it is `replaceable` (a regular file, or a folder that
    ``folder_ok`` recognises); make sure its parent is a folder. What a killed run left is cleaned first
    (`recover_stale`)."""
    path = Path(path)
    recover_stale(path)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise SogError(f"output {path} already exists (pass --force / overwrite=True to replace it)")
        if not replaceable(path, folder_ok):
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                raise SogError(f"refusing to replace folder {path}: it is not a SOG folder (meta.json and image "
                               "planes only); remove it yourself or choose another output")
            kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device node" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "special")
            raise SogError(f"refusing to replace {path}: it is {kind}, not a regular file (--force replaces only "
                           "regular files and folders sog wrote)")
    if not path.parent.is_dir():
        raise SogError(f"output folder {path.parent} does not exist")
    return path


def _territory(source: Path) -> Path:
    """The path an input occupies: its folder for a SOG folder or its meta.json, else the file itself."""
    if source.name == "meta.json" and source.parent.is_dir():
        return source.parent
    return source


def check_not_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an ``output`` that is one of ``inputs`` (the same file by any path, links included), holds one,
    or lies inside an input SOG folder."""
    out = Path(os.path.realpath(output))
    for source in inputs:
        src = Path(os.path.realpath(source))
        land = _territory(src)
        same = out == src or out == land
        if not same and out.exists() and src.exists():
            try:
                same = os.path.samefile(out, src)
            except OSError:
                same = False
        if same:
            raise SogError(f"output {output} is the input {source}; choose another output")
        if land.is_dir() and land in out.parents:
            raise SogError(f"output {output} lies inside the input SOG folder {land}; choose another output")
        if out in src.parents:
            raise SogError(f"output {output} holds the input {source}; choose another output")


def check_destination(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], overwrite: bool,
                      folder_ok: FolderCheck = is_sog_folder) -> None:
    """Before any work: `check_not_input` and `check_output` (a ``.../meta.json`` output stands for its folder)."""
    check_not_input(output, inputs)
    out = Path(output)
    check_output(out.parent if out.name == "meta.json" else out, overwrite, folder_ok)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False, directory: bool = False,
                folder_ok: FolderCheck = is_sog_folder) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On any exception (interrupts included) the temporary file or folder is removed, so a failed run never
    leaves a partial output behind; an `OSError` while writing becomes a `SogError` naming the output.
    ``folder_ok``: which existing folders ``overwrite`` may replace (`check_output`).
    """
    path = check_output(path, overwrite, folder_ok)
    tmp: Path | None = None
    try:
        try:
            tmp = _sibling(path, ".tmp")  # named before it exists: the clean-up below knows it at any moment
            if directory:
                os.mkdir(tmp, 0o700)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise SogError(f"cannot write in folder {path.parent} ({exc.strerror or exc})") from None
        try:
            yield tmp
            os.chmod(tmp, _default_mode(directory))
            _replace(tmp, path, overwrite, folder_ok)
        except OSError as exc:
            raise SogError(f"cannot write {path} ({exc.strerror or exc})") from None
    except BaseException:
        if tmp is not None and (tmp.exists() or tmp.is_symlink()):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        raise


def _replace(tmp: Path, path: Path, overwrite: bool, folder_ok: FolderCheck = is_sog_folder) -> None:
    """Move ``tmp`` onto ``path``. A plain file over a file (or nothing) is one `os.replace`; otherwise the old
    output (a SOG folder, checked again here) is renamed aside first and deleted only once the new one is in."""
    exists = path.exists() or path.is_symlink()
    if exists:
        check_output(path, overwrite, folder_ok)  # again: it may have changed while the output was computed
    if not exists or (not tmp.is_dir() and not path.is_dir()):
        os.replace(tmp, path)
        return
    aside = _sibling(path, ".old")
    try:
        os.mkdir(aside, 0o700)
        os.rename(path, aside / path.name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(aside)
        raise
    try:
        os.replace(tmp, path)
    except BaseException:
        os.rename(aside / path.name, path)  # put the old output back (if this fails it stays in `aside`)
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _default_mode(directory: bool) -> int:
    """The mode a plain ``open``/``mkdir`` would give (mkstemp/mkdtemp use 0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask
