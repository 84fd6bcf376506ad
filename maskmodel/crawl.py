"""Input discovery: files and directories, recursively, safely.

Extensions match case-insensitively; hidden files and folders are skipped unless asked; directory
symlink loops are visited once; the output directory is never crawled, even inside an input.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm"})


@dataclass(frozen=True)
class InputFile:
    """A file to process and its path relative to the input it was found under."""

    path: Path
    relative: str


def _selected(relative: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    if include and not any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(Path(relative).name, g) for g in include):
        return False
    return not any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(Path(relative).name, g) for g in exclude)


def iter_inputs(
    inputs: list[Path],
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
    for root in inputs:
        root = Path(root)
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
