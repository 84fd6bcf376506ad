"""Input discovery: files and directories, recursively, safely; or folders named by a URI.

Extensions match case-insensitively; hidden files and folders are skipped unless asked; directory
symlink loops are visited once; the output directory is never crawled, even inside an input; a folder
that cannot be listed (permissions) becomes an item with an error, not a silent gap. A folder
URI (`s3://bucket/photos`, any filesystem of `maskmodel.io.storage`) is listed in the same order as the
same tree on disk; a file URI is taken as a file.
"""

from __future__ import annotations

import fnmatch
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from maskmodel.io.layout import InputRoot, file_identity, is_inside, resolve_inputs
from maskmodel.io.storage import local_path, open_folder

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".jp2", ".pbm",
                              ".pgm", ".ppm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv"})


@dataclass(frozen=True)
class InputFile:
    """A file to process and its path relative to the input it was found under (the report's path).

    For a file listed from a folder URI, `source` is that URI and `path` the file's path inside it.
    `output` is the name of its annotated copy (set by `maskmodel.batch.run`), and `error` says why a
    file or folder could not even be listed (it then gets an error row).
    """

    path: Path | PurePosixPath
    relative: str
    source: str | None = None
    output: str | None = None
    error: str | None = None


def _selected(relative: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    if include and not any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(Path(relative).name, g) for g in include):
        return False
    return not any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(Path(relative).name, g) for g in exclude)


def iter_inputs(
    inputs: list[Path | str] | list[InputRoot],
    skip_dir: Path | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    hidden: bool = False,
    extensions: frozenset[str] = IMAGE_EXTENSIONS,
    skipped: Counter | None = None,
) -> Iterator[InputFile]:
    """Yield every image file under `inputs`, sorted, each once.

    A file named directly is taken whatever its extension; in directories only `extensions` count
    (`skipped`, if given, counts the other files by extension). With several inputs, relative paths
    are prefixed by the input's name, made distinct (`maskmodel.io.layout.resolve_inputs`). A folder that
    cannot be listed is yielded as an `InputFile` with an `error`.
    """
    roots = inputs if all(isinstance(i, InputRoot) for i in inputs) else resolve_inputs(inputs)
    skip = file_identity(skip_dir) if skip_dir else None
    seen: set[Path] = set()
    for root in roots:
        if root.real is None:
            yield from _iter_remote(root.location, root.prefix, include, exclude, hidden, extensions)
            continue
        given = local_path(root.location)
        if root.is_dir and skip is not None and is_inside(root.real, skip):
            yield InputFile(given, root.prefix or root.real.name, error="this input folder is inside --out: its "
                            "photos are not read; choose an --out outside the inputs")
            continue
        if not root.is_dir:
            key = root.real
            if key not in seen:
                seen.add(key)
                yield InputFile(given, root.prefix)
            continue
        yield from _iter_folder(given, root.prefix, skip, seen, include, exclude, hidden, extensions, skipped)


def _iter_folder(root: Path, prefix: str, skip: tuple[int, int] | None, seen: set[Path], include: tuple[str, ...],
                 exclude: tuple[str, ...], hidden: bool, extensions: frozenset[str],
                 skipped: Counter | None) -> Iterator[InputFile]:
    visited: set[Path] = set()
    unlisted: list[OSError] = []
    for directory, subdirs, files in os.walk(root, followlinks=True, onerror=unlisted.append):
        while unlisted:
            yield _unlisted(unlisted.pop(0), root, prefix)
        real = Path(os.path.realpath(directory))
        if real in visited or (skip is not None and file_identity(real) == skip):  # --out, whatever its path
            subdirs[:] = []
            continue
        visited.add(real)
        subdirs[:] = sorted(d for d in subdirs if hidden or not d.startswith("."))
        for name in sorted(files):
            if not hidden and name.startswith("."):
                continue
            path = Path(directory) / name
            relative = os.path.join(prefix, os.path.relpath(path, root))
            if path.suffix.lower() not in extensions:
                if skipped is not None:
                    skipped[path.suffix.lower() or "(none)"] += 1
                continue
            if not _selected(relative, include, exclude):
                continue
            key = path.resolve() if path.exists() else path.absolute()
            if key in seen:
                continue
            seen.add(key)
            yield InputFile(path, relative)
    for error in unlisted:
        yield _unlisted(error, root, prefix)


def _unlisted(error: OSError, root: Path, prefix: str) -> InputFile:
    """The error item of a folder that could not be listed."""
    relative = os.path.relpath(error.filename, root)
    relative = (prefix or Path(os.path.realpath(root)).name) if relative == "." else os.path.join(prefix, relative)
    return InputFile(Path(error.filename), relative, error=f"cannot list this folder: {error.strerror}")


def _iter_remote(uri: str, prefix: str, include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool,
                 extensions: frozenset[str]) -> Iterator[InputFile]:
    """The files of a folder URI, in `os.walk` order: each folder's files, then its subfolders; or the
    file a URI names."""
    folder = open_folder(uri)
    if folder.is_file():
        base, _, options = uri.partition("?")
        parent, name = base.rsplit("/", 1)
        yield InputFile(PurePosixPath(name), name, f"{parent}?{options}" if options else parent)
        return
    keys = [PurePosixPath(key) for key in folder.list_files()]
    for key in sorted(keys, key=lambda k: [(1, part) for part in k.parts[:-1]] + [(0, k.name)]):
        relative = str(PurePosixPath(prefix, key)) if prefix else str(key)
        if not hidden and any(part.startswith(".") for part in key.parts):
            continue
        if key.suffix.lower() in extensions and _selected(relative, include, exclude):
            yield InputFile(key, relative, uri)
