"""Reading a file the user named, safely: only regular files (a FIFO, a device or a socket is refused
without blocking: the file is opened non-blocking and checked with `fstat` before any read), and at
most a stated number of bytes (a label file of gigabytes is refused, not read). And writing one: every
file maskmodel writes outside an annotate run's own folder writer goes through `new_file` (a fresh file
beside the target, then a rename: a link planted at the target is replaced, never written through)."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
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


def write_all(handle: int, data: bytes, path: str | os.PathLike) -> None:
    """Write `data` at the descriptor's position; an error names `path` (a full disk says which file)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(handle, view):]
    except OSError as error:
        raise OSError(error.errno, f"cannot write {path}: {error.strerror}") from None


def fresh_file(path: str | os.PathLike, temp_prefix: str | None = None) -> Path:
    """A new, empty file beside `path` to write it under first: created with `O_CREAT | O_EXCL |
    O_NOFOLLOW` (nothing that was there, link or file, is ever opened), named `temp_prefix` and a random
    part, else a hidden name that keeps the suffix of `path` (Keras, matplotlib and OpenCV go by it)."""
    path = Path(path)
    random = secrets.token_hex(6)
    name = f"{temp_prefix}{random}" if temp_prefix else f".{path.stem[:40]}-{random}.partial{path.suffix[:16]}"
    temp = path.with_name(name)
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
    return temp


@contextmanager
def new_file(path: str | os.PathLike, replace: bool = True, temp_prefix: str | None = None) -> Iterator[Path]:
    """The one way maskmodel writes a file: the block fills the fresh file it is given (`fresh_file`),
    which then takes the name `path` whole (`publish_file`), or is removed if the block fails. A symlink or
    a hard link at `path` is replaced, never written through."""
    temp = fresh_file(path, temp_prefix)
    try:
        yield temp
        publish_file(temp, path, replace)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def write_file_atomic(path: str | os.PathLike, data: bytes, replace: bool = True, temp_prefix: str | None = None,
                      sync: bool = False) -> None:
    """Write `data` to `path` whole or not at all (`new_file`), with `sync` flushed to disk before the
    rename. With `replace=False` an existing `path` is left alone (`FileExistsError`)."""
    with new_file(path, replace, temp_prefix) as temp:
        handle = os.open(temp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            write_all(handle, data, path)
            if sync:
                os.fsync(handle)
        finally:
            os.close(handle)


def publish_file(temp: str | os.PathLike, path: str | os.PathLike, replace: bool = True) -> None:
    """Move the finished file `temp` to `path` in one step (same file system), once it is checked to be
    still a regular file with one name (as `fresh_file` made it); with `replace=False` an existing `path`
    (a file or a symlink) raises `FileExistsError` and stays as it was."""
    info = os.lstat(temp)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        raise OSError(errno.EEXIST, f"{temp} changed while it was written: {path} was not written")
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
