"""Folders `annotate` reads from and writes to: a local folder, or a folder named by a URI on any
filesystem that pyarrow or fsspec opens (`s3://`, `gs://`, `abfs://`, `hdfs://`, `ftp://`, ...), so
that workers on many machines read and write one place. `source_folder` gives the (cached) folder an
input URI names; `open_folder` any folder.

A file appears under its final name only when complete: local folders and ordinary filesystems get
a temporary name first, then a rename; object stores (S3, GCS, Azure) publish an object only when
its upload completes. URIs carry their options (`s3://bucket/run?endpoint_override=host:9000`);
credentials come from the environment, as for pyarrow and fsspec. Remote folders need pyarrow and
fsspec, both in the `[ray]` extra.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".tmp-"  # files being written (remote folders; local ones use their run token)
REMOTE_HINT = "writing to a URI needs pyarrow and fsspec: pip install '.[ray]' (from a checkout)"
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CREDENTIALS = re.compile(r"://[^/@]*@")


def is_uri(location: str | os.PathLike) -> bool:
    """True for `scheme://...` locations; False for local paths."""
    return bool(_URI.match(os.fspath(location)))


def local_path(location: str | os.PathLike) -> Path | None:
    """The local path a location names (a path or a `file://` URI), or None for a remote URI."""
    location = os.fspath(location)
    if location.startswith("file://"):
        return Path(location[len("file://"):])
    return None if is_uri(location) else Path(location)


def open_folder(location: str | os.PathLike) -> LocalFolder | RemoteFolder:
    """The folder named by a local path or a URI."""
    path = local_path(location)
    return RemoteFolder(os.fspath(location)) if path is None else LocalFolder(path)


@lru_cache(maxsize=16)
def source_folder(uri: str) -> RemoteFolder:
    """The folder of an input URI, opened once per process (workers read many files from it)."""
    return RemoteFolder(uri)


class LocalFolder:
    """A folder on this machine (or a network file system mounted on every node).

    Writes never follow a symlink: the folders on the way to a file are opened one by one without
    following links (a symlink there is an error for that file), and the finished file is renamed into
    place relative to its opened folder, which replaces a link rather than writing through it.
    """

    remote = False

    def __init__(self, root: Path, temp_prefix: str = TEMP_PREFIX) -> None:
        self.root = Path(root)
        self.temp_prefix = temp_prefix
        # called with a finished file's name and `lstat` just before it is renamed into place (the run
        # state records its identity: `maskmodel.io.runstate.record_identity`)
        self.on_publish: Callable[[str, os.stat_result], None] | None = None

    def __str__(self) -> str:
        return str(self.root)

    def show(self, relative: str) -> str:
        """How to name `relative` in messages."""
        return str(self.root / relative)

    def can_hold(self, relative: str) -> bool:
        """Whether a file can be written under this name (any name a local folder was read with)."""
        return True

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write `data` to `relative`, under its final name only once complete."""
        with self.staged_file(relative) as temp:
            temp.write_bytes(data)

    @contextmanager
    def staged_file(self, relative: str) -> Iterator[Path]:
        """A local file to write `relative` to (a short temporary name with the same suffix, for writers
        that go by it); it gets its final name when the block ends without error, and is removed
        otherwise."""
        *folders, name = relative.split("/")
        if any(part in ("", ".", "..") for part in (*folders, name)):
            raise ValueError(f"not a relative path inside the output folder: {relative!r}")
        parent_fd = self._open_folders(folders)
        try:
            suffix = Path(name).suffix[:16]
            temp = f"{self.temp_prefix}{uuid.uuid4().hex[:8]}{suffix}"
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=parent_fd))
            try:
                yield self.root.joinpath(*folders, temp)
                if self.on_publish is not None:
                    self.on_publish(relative, os.stat(temp, dir_fd=parent_fd, follow_symlinks=False))
                os.rename(temp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            finally:
                try:
                    os.unlink(temp, dir_fd=parent_fd)
                except FileNotFoundError:
                    pass
        finally:
            os.close(parent_fd)

    def _open_folders(self, folders: list[str]) -> int:
        """A descriptor of `root/folders...`, made as needed; raises OSError (ELOOP, ENOTDIR) when one of
        them is a symlink or not a folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        current = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for folder in folders:
                try:
                    os.mkdir(folder, dir_fd=current)
                except FileExistsError:
                    pass
                following = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
                os.close(current)
                current = following
        except BaseException:
            os.close(current)
            raise
        return current

class RemoteFolder:
    """A folder on a filesystem named by a URI, used through pyarrow's filesystem interface (fsspec
    filesystems are wrapped in it)."""

    remote = True

    def __init__(self, uri: str) -> None:
        try:
            import pyarrow.fs as pafs
        except ImportError:
            raise RuntimeError(REMOTE_HINT) from None
        self.uri = uri
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(uri)
            protocol = self.fs.type_name
        except ValueError:  # a scheme pyarrow does not know: fsspec may (ftp, sftp, abfs, ...)
            try:
                import fsspec
            except ImportError:
                raise RuntimeError(REMOTE_HINT) from None
            try:
                filesystem, self.root = fsspec.core.url_to_fs(uri)
            except ImportError as error:  # fsspec names the packages a protocol needs
                scheme = uri.split(":", 1)[0]
                raise RuntimeError(f"cannot open {scheme}:// locations here: {error}") from None
            self.fs = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
            protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]
        self.root = self.root.rstrip("/")
        self.atomic_put = protocol in OBJECT_STORES

    def __str__(self) -> str:
        """The URI without its options and credentials (safe to print and to record)."""
        return _CREDENTIALS.sub("://", self.uri.split("?")[0]).rstrip("/")

    def show(self, relative: str) -> str:
        return f"{self}/{relative}"

    def can_hold(self, relative: str) -> bool:
        """Whether a file can be written under this name: remote filesystems take UTF-8 names only."""
        try:
            relative.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    def _path(self, relative: str) -> str:
        return f"{self.root}/{Path(relative).as_posix()}"

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write `data` to `relative`, under its final name only once complete."""
        self._publish(relative, lambda stream: stream.write(data))

    @contextmanager
    def staged_file(self, relative: str) -> Iterator[Path]:
        """A local temporary file, uploaded to `relative` when the block ends without error."""
        with tempfile.TemporaryDirectory(prefix="maskmodel-") as folder:
            temp = Path(folder) / Path(relative).name
            yield temp
            with open(temp, "rb") as source:
                self._publish(relative, lambda stream: shutil.copyfileobj(source, stream, 1 << 20))

    def exists(self) -> bool:
        """Whether the URI names an existing file or folder."""
        return self._exists(self.root)

    def is_file(self) -> bool:
        """Whether the URI names a file rather than a folder."""
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self.root).type == pafs.FileType.File

    def download(self, relative: str, local: Path) -> None:
        """Copy the file `relative` to the local file `local`."""
        with self.fs.open_input_stream(self._path(relative)) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)

    def read_bytes(self, relative: str, read: Callable[[BinaryIO, int], bytes] | None = None) -> bytes | None:
        """The content of `relative` (or what `read(stream, size)` takes of it), or None if there is no such
        file."""
        import pyarrow.fs as pafs

        path = self._path(relative)
        info = self.fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as stream:
            return stream.read() if read is None else read(stream, info.size)

    def list_files(self, relative: str = "") -> list[str]:
        """Relative paths of the files under `relative`, sorted."""
        import pyarrow.fs as pafs

        base = self._path(relative) if relative else self.root
        infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=True))
        return sorted(i.path[len(self.root) + 1:] for i in infos if i.type == pafs.FileType.File)

    def delete(self, relative: str) -> None:
        self.fs.delete_file(self._path(relative))

    def is_empty(self) -> bool:
        import pyarrow.fs as pafs

        return not self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))

    def remove_temporary_files(self) -> None:
        if not self.atomic_put:
            for relative in self.list_files():
                if Path(relative).name.startswith(TEMP_PREFIX):
                    self.delete(relative)

    def _publish(self, relative: str, write) -> None:
        path = self._path(relative)
        if self.atomic_put:  # no folders to create, no rename needed
            with self.fs.open_output_stream(path) as stream:
                write(stream)
            return
        parent, name = path.rsplit("/", 1)
        self._make_folder(parent)
        temp = f"{parent}/{TEMP_PREFIX}{uuid.uuid4().hex[:8]}-{name}"
        try:
            with self.fs.open_output_stream(temp) as stream:
                write(stream)
            self.fs.move(temp, path)
        except BaseException:
            if self._exists(temp):
                self.fs.delete_file(temp)
            raise

    def _make_folder(self, path: str) -> None:
        if self._exists(path):
            return
        try:
            self.fs.create_dir(path, recursive=True)
        except Exception:  # noqa: BLE001  fsspec filesystems raise their own error types
            if not self._exists(path):  # else another worker made it meanwhile
                raise

    def _exists(self, path: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(path).type != pafs.FileType.NotFound
