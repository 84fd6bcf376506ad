"""Where each input's results go, decided once before any work: the safety rules of `annotate`.

Every input root and the output root are resolved to real paths up front, and compared by identity
(device and inode, so a bind mount or another path to the same folder is found). From them:
- overlaps are decided: `--out` may not be an input or hold an input file's own path; an `--out` inside
  an input folder is left out of the crawl; an input folder inside `--out` is an error row
  (`maskmodel.io.crawl`); an output that is not empty must have been written by maskmodel
  (`maskmodel.io.runstate.RunState`) before it is resumed or overwritten;
- every input gets a distinct report path (`InputRoot.prefix`: the folder or file name as given, or
  the real one for `.` and `..`, made distinct with `~2`, `~3`, ... in the order of their real paths,
  whatever the order of the inputs, when two inputs share one) and a distinct annotated-copy name
  (`OutputNames`): relative, never absolute, never `..`, never an existing file that maskmodel did not
  write, never inside an input folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from maskmodel.errors import UsageError
from maskmodel.io.storage import local_path

STATE_FOLDER = ".maskmodel"  # what maskmodel keeps inside an output folder (`maskmodel.io.runstate`)

ENCODABLE = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class InputRoot:
    """One input as given (`location`), its real path (None for a URI), and the prefix of its report
    paths ("" for a single input folder)."""

    location: str
    real: Path | None
    prefix: str
    is_dir: bool


def resolve_inputs(inputs: list[str | os.PathLike], out_dir: str | os.PathLike | None = None) -> list[InputRoot]:
    """Resolve the inputs (against the output folder, if given); raises `UsageError` for an overlap
    that would let a write land on an input. Files are compared by identity (device and inode), so an
    `--out` that is an input seen through another path (a bind mount, a hard-linked file) is found.

    Prefixes do not depend on the order of the inputs: colliding names get `~2`, `~3`, ... in the order
    of their real paths."""
    out = local_path(out_dir) if out_dir is not None else None
    out_id = file_identity(out) if out is not None else None
    found = []
    for location in inputs:
        path = local_path(location)
        if path is None:
            if out_dir is not None:
                _check_remote_overlap(str(location), str(out_dir))
            name = PurePosixPath(str(location).split("?")[0].rstrip("/")).name or "input"
            real, is_dir = None, True
        else:
            real = Path(os.path.realpath(path))
            is_dir = real.is_dir()
            name = path.name if path.name not in ("", ".", "..") else (real.name or "root")
            if out_id is not None and file_identity(real) == out_id:
                raise UsageError(f"--out {out_dir} is the input {location}: originals are never overwritten")
        found.append((str(location), real, is_dir, name))
    prefixes, used = {}, {STATE_FOLDER}  # an input named .maskmodel is reported as .maskmodel~2
    for index, (location, real, is_dir, name) in sorted(enumerate(found), key=lambda item: (
            item[1][3], str(item[1][1] if item[1][1] is not None else item[1][0]), item[0])):
        prefix = name if (len(inputs) > 1 or not is_dir) else ""
        prefixes[index] = _first_free(prefix, used.__contains__, keep_suffix=not is_dir) if prefix else prefix
        used.add(prefixes[index])
    return [InputRoot(location, real, prefixes[index], is_dir) for index, (location, real, is_dir, _) in enumerate(found)]


def file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of what `path` names (following links), or None when it does not exist."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def is_inside(path: Path, folder_id: tuple[int, int]) -> bool:
    """Whether the folder with identity `folder_id` is `path` or one of its real parents."""
    real = Path(os.path.realpath(path))
    return any(file_identity(candidate) == folder_id for candidate in (real, *real.parents))


def input_file(report_path: str, roots: list[InputRoot]) -> Path | None:
    """The local file a report path (without `spreadsheet_safe`'s mark) names, or None (a URI input)."""
    for root in roots:
        if root.real is None:
            continue
        if not root.prefix:
            return root.real / report_path
        if report_path == root.prefix:
            return root.real
        if report_path.startswith(root.prefix + "/"):
            return root.real / report_path[len(root.prefix) + 1:]
    return None


def _first_free(name: str, taken: Callable[[str], bool], keep_suffix: bool = True) -> str:
    """`name`, or the first of `name~2`, `name~3`, ... (before the suffix of its last part, with
    `keep_suffix`) that is not `taken`."""
    parent, _, leaf = name.rpartition("/")
    stem, suffix = _split_suffix(leaf) if keep_suffix else (leaf, "")
    candidate, number = name, 1
    while taken(candidate):
        number += 1
        candidate = f"{parent + '/' if parent else ''}{stem}~{number}{suffix}"
    return candidate


def _split_suffix(name: str) -> tuple[str, str]:
    suffix = PurePosixPath(name).suffix
    return (name[: -len(suffix)], suffix) if suffix and len(suffix) < len(name) else (name, "")


def _check_remote_overlap(location: str, out_dir: str) -> None:
    base, out = location.split("?")[0].rstrip("/"), out_dir.split("?")[0].rstrip("/")
    if out == base or out.startswith(base + "/"):
        raise UsageError(f"--out {out_dir} is inside the input {location}: choose an output outside it")


def is_safe_relative(name: str) -> bool:
    """A relative name with no `..`, no empty or `.` parts, not absolute."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(part not in ("", ".", "..") for part in parts)


def in_another_run(root: Path, name: str) -> bool:
    """Whether a folder on the way to `name` inside the output folder `root` is another run's output
    folder (it holds a state folder): maskmodel never writes nor removes anything in there."""
    folder = Path(root)
    for part in name.split("/")[:-1]:
        folder = folder / part
        if os.path.lexists(folder / STATE_FOLDER):
            return True
    return False


def output_name(relative: str, image_format: str, video: bool = False) -> str:
    """The natural name of the annotated copy of `relative` (`same` keeps the suffix when it can be
    written); `OutputNames` makes it distinct."""
    if video:
        return relative
    suffix = PurePosixPath(relative).suffix.lower()
    if image_format == "same":
        return relative if suffix in ENCODABLE else f"{relative}.png"
    return relative if suffix == f".{image_format}" else f"{relative}.{image_format}"


class OutputNames:
    """Gives each input a distinct annotated-copy name inside a local output folder.

    A name is taken when another input got it, or when a file that maskmodel did not write (`owned`
    says which it did) is already there; then `~2`, `~3`, ... is inserted before the suffix. The same
    inputs and the same folder give the same names, so `--resume` finds its own files again.
    A name whose place is inside an input that lies inside the output folder is refused (`None`).
    """

    def __init__(self, out_root: Path | None, roots: list[InputRoot], owned: set[str]) -> None:
        self.out_root = Path(os.path.realpath(out_root)) if out_root is not None else None
        # inputs inside the output folder (an output folder inside an input is not crawled instead)
        self.protected = [root.real for root in roots if root.real is not None and self.out_root is not None
                          and self.out_root in root.real.parents]
        self.owned = owned
        self.used: set[str] = set()

    def assign(self, natural: str) -> str | None:
        """The name to write `natural` under, or None if no write there could be safe (`refusal` says why)."""
        if not is_safe_relative(natural) or natural.split("/")[0] == STATE_FOLDER or self._in_another_run(natural):
            return None
        candidate = _first_free(natural, lambda name: name in self.used or self._foreign(name))
        if self._inside_input(candidate):
            return None
        self.used.add(candidate)
        return candidate

    def refusal(self, natural: str) -> str:
        """Why `assign` gave no name for `natural`."""
        if natural.split("/")[0] == STATE_FOLDER:
            return f"its annotated copy would be written inside {STATE_FOLDER}/, where maskmodel keeps its state"
        if is_safe_relative(natural) and self._in_another_run(natural):
            return ("its annotated copy would be written inside another run's output folder (a folder holding "
                    f"{STATE_FOLDER}/), which maskmodel never enters; choose another --out")
        return "its annotated copy would be written inside an input folder; choose an --out outside the inputs"

    def _in_another_run(self, name: str) -> bool:
        return self.out_root is not None and in_another_run(self.out_root, name)

    def _foreign(self, name: str) -> bool:
        if self.out_root is None or name in self.owned:
            return False
        return os.path.lexists(self.out_root / name)

    def _inside_input(self, name: str) -> bool:
        if self.out_root is None:
            return False
        target = self.out_root / name
        return any(target == root or root in target.parents for root in self.protected)
