"""Input discovery: files and directories, recursively, safely; or folders named by a URI.

Extensions match case-insensitively; hidden files and folders are skipped unless asked; directory
symlink loops are visited once; the output directory is never crawled, even inside an input. A folder
URI (`s3://bucket/photos`, any filesystem of `maskmodel.outputs`) is listed in the same order as the
same tree on disk; a file URI is taken as a file.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from maskmodel.outputs import local_path, open_folder

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm"})


@dataclass(frozen=True)
class InputFile:
    """A file to process and its path relative to the input it was found under (the report's path).

    For a file listed from a folder URI, `source` is that URI and `path` the file's path inside it.
    """

    path: Path | PurePosixPath
    relative: str
    source: str | None = None


def _selected(relative: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    if include and not any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(Path(relative).name, g) for g in include):
        return False
    return not any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(Path(relative).name, g) for g in exclude)


def iter_inputs(
    inputs: list[Path | str],
    skip_dir: Path | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    hidden: bool = False,
    extensions: frozenset[str] = IMAGE_EXTENSIONS,
) -> Iterator[InputFile]:
    """Yield every image file under `inputs`, sorted, each once.

    A file named directly is taken whatever its extension; in directories only `extensions` count.
    With several inputs, relative paths are prefixed by the input's name to keep them apart.
    """
    skip = Path(skip_dir).resolve() if skip_dir else None
    seen: set[Path] = set()
    for location in inputs:
        root = local_path(location)
        if root is None:
            name = PurePosixPath(str(location).split("?")[0]).name
            yield from _iter_remote(str(location), name if len(inputs) > 1 else "", include, exclude, hidden,
                                    extensions)
            continue
        prefix = root.name if len(inputs) > 1 else ""
        if not root.is_dir():
            key = root.resolve() if root.exists() else root.absolute()
            if key not in seen:
                seen.add(key)
                yield InputFile(root, root.name)
            continue
        visited: set[Path] = set()
        for directory, subdirs, files in os.walk(root, followlinks=True):
            real = Path(directory).resolve()
            if real in visited or (skip is not None and (real == skip or skip in real.parents)):
                subdirs[:] = []
                continue
            visited.add(real)
            subdirs[:] = sorted(d for d in subdirs if hidden or not d.startswith("."))
            for name in sorted(files):
                if not hidden and name.startswith("."):
                    continue
                path = Path(directory) / name
                relative = os.path.join(prefix, os.path.relpath(path, root))
                if path.suffix.lower() not in extensions or not _selected(relative, include, exclude):
                    continue
                key = path.resolve() if path.exists() else path.absolute()
                if key in seen:
                    continue
                seen.add(key)
                yield InputFile(path, relative)


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
