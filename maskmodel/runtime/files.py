"""Reading a file the user named, safely: only regular files (a FIFO, a device or a socket is refused
without blocking: the file is opened non-blocking and checked with `fstat` before any read), and at
most a stated number of bytes (a label file of gigabytes is refused, not read)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def cache_dir() -> Path:
    """maskmodel's cache folder (downloaded models, compiled networks): `$MASKMODEL_HOME` or `~/.cache/maskmodel`."""
    return Path(os.environ.get("MASKMODEL_HOME", "~/.cache/maskmodel")).expanduser()


class UnreadableFileError(OSError):
    """A file that is not read: missing, not a regular file, or larger than the limit (the message says which)."""


def regular_file_handle(path: str | os.PathLike) -> int:
    """An open, non-blocking, read-only handle of the regular file `path`; raises `UnreadableFileError`."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise UnreadableFileError(f"cannot read file: {error.strerror or error}") from error
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise UnreadableFileError(f"not a regular file ({file_kind(mode)})")
    return handle


def read_regular_file(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file `path`, refused (`UnreadableFileError`) above `max_bytes`."""
    handle = regular_file_handle(path)
    with os.fdopen(handle, "rb") as stream:
        size = os.fstat(handle).st_size
        if max_bytes is not None and size > max_bytes:
            raise UnreadableFileError(f"{size} bytes, more than the {max_bytes} this file may have")
        try:
            data = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
        except OSError as error:
            raise UnreadableFileError(f"cannot read file: {error.strerror or error}") from error
    if max_bytes is not None and len(data) > max_bytes:
        raise UnreadableFileError(f"more than the {max_bytes} bytes this file may have")
    return data


def file_kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
             stat.S_ISSOCK: "a socket", stat.S_ISDIR: "a directory"}
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


def write_file_atomic(path: str | os.PathLike, data: bytes, replace: bool = True) -> None:
    """Write `data` to `path` whole or not at all: a temporary file beside it, then a rename. A symlink at
    `path` is replaced, never followed. With `replace=False` an existing `path` is left alone
    (`FileExistsError`)."""
    import tempfile

    folder, name = os.path.split(os.fspath(path))
    handle, temp = tempfile.mkstemp(prefix=f".{name[:40]}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temp, 0o644 & ~_umask())
        publish_file(temp, path, replace)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def publish_file(temp: str | os.PathLike, path: str | os.PathLike, replace: bool = True) -> None:
    """Move the finished file `temp` to `path` in one step (same file system); with `replace=False` an
    existing `path` (a file or a symlink) raises `FileExistsError` and stays as it was."""
    if replace:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # fails if anything, even a dangling symlink, has the name
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", os.fspath(path)) from None
        os.rename(temp, path)
        return
    os.unlink(temp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
