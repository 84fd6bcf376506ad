"""The files maskmodel keeps in a local output folder (`OUT/.maskmodel/*`, `report.csv`, `summary.json`),
opened one way only, because the output folder is untrusted input: anybody may have put a symlink, a hard
link to an original photo, a FIFO or a device under one of these names.

- A file is read or appended to only if it is a regular file with exactly one name (`st_nlink == 1`),
  checked with `fstat` on the opened descriptor (opened with `O_NOFOLLOW | O_NONBLOCK`, so a symlink is
  refused and a FIFO never blocks). Nothing is truncated or written before that check.
- A file is replaced only by a new file: created under a fresh temporary name with
  `O_CREAT | O_EXCL | O_NOFOLLOW`, written, then renamed over the name (a rename replaces a link of any
  kind; it never writes into the file the link points to).
- Anything else under one of these names is refused with `UnsafeOutputFile` (a usage error, exit 2)
  naming the path, and a failed write (a full disk) names the file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from maskmodel.errors import UsageError
from maskmodel.runtime.files import file_kind, write_file_atomic

_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafeOutputFile(UsageError):
    """A file of the output folder that maskmodel will not open: not a regular file with one name."""


def refuse(path: Path, what: str) -> UnsafeOutputFile:
    return UnsafeOutputFile(f"{path} is {what}: maskmodel only writes its own regular files in --out; "
                            "move it away (or choose a new --out)")


def _problem(mode: int, links: int) -> str | None:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if not stat.S_ISREG(mode):
        return file_kind(mode)
    if links != 1:
        return f"a hard link ({links} names share this file)"
    return None


def check_own_file(path: Path) -> None:
    """Refuse whatever is at `path` unless it is nothing or a regular file with one name."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    problem = _problem(info.st_mode, info.st_nlink)
    if problem:
        raise refuse(path, problem)


def open_own_file(path: Path, flags: int) -> int:
    """A descriptor of `path` opened with `flags` (`O_RDONLY`, `O_RDWR`, `O_WRONLY`, with `O_APPEND` and
    `O_CREAT` as needed, never `O_TRUNC`), checked to be a regular file with one name before it is
    returned; raises `UnsafeOutputFile` otherwise and `FileNotFoundError` when it is missing."""
    if flags & os.O_TRUNC:
        raise ValueError("open_own_file never truncates before the check: truncate the returned descriptor")
    try:
        handle = os.open(path, flags | _OPEN_FLAGS, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise refuse(path, "a symlink") from None
        if error.errno == errno.ENXIO:  # a FIFO opened for writing without a reader
            raise refuse(path, "a FIFO") from None
        if error.errno == errno.EISDIR:
            raise refuse(path, "a directory") from None
        raise
    info = os.fstat(handle)
    problem = _problem(info.st_mode, info.st_nlink)
    if problem:
        os.close(handle)
        raise refuse(path, problem)
    return handle


def read_own_file(path: Path, max_bytes: int = 64 << 20) -> bytes | None:
    """The content of the own file `path`, or None when there is none (refused as `open_own_file` does)."""
    try:
        handle = open_own_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(handle, "rb") as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise refuse(path, f"larger than the {max_bytes} bytes maskmodel writes there")
    return data


def replace_own_file(path: Path, data: bytes, temp_prefix: str = ".maskmodel-tmp-") -> None:
    """Replace `path` by a new regular file holding `data`: written under a fresh temporary name beside
    it (`O_EXCL | O_NOFOLLOW`), flushed to disk, then renamed over `path`; removed again on failure
    (`maskmodel.runtime.files.write_file_atomic`, the writer of every other file maskmodel writes too)."""
    try:
        write_file_atomic(path, data, temp_prefix=temp_prefix, sync=True)
    except OSError as error:
        if error.filename is None:  # already names `path`
            raise
        raise OSError(error.errno, f"cannot write {path}: {error.strerror}") from None


def remove_own_file(path: Path) -> None:
    """Remove the own file `path` if there is one (only a name is removed: never a file's content)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
