"""The run folder `maskmodel train` writes: never inside the training data, and never an earlier run's
unless asked (`--overwrite`): an existing run folder `run` makes the next free `run-2`, `run-3`, ... (as
ultralytics does with its `exp`, `exp2`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from maskmodel.errors import UsageError


def check_outside_data(out_dir: Path, data: Iterable[Path]) -> None:
    """Refuse (`UsageError`) a run folder inside (or equal to) a training data folder: its files would
    join the training set of the next run."""
    out = os.path.realpath(out_dir)
    for root in data:
        real = os.path.realpath(root)
        if os.path.commonpath([real, out]) == real:
            raise UsageError(f"--out {out_dir} is inside the training data {root}: choose a folder outside it")


def new_run_folder(out_dir: Path, data: Iterable[Path], overwrite: bool = False) -> Path:
    """The folder to write a training run into, created: `out_dir` if it is new or empty (or with
    `overwrite`), else the next free `out_dir-N`. Raises `UsageError` for a run folder inside the
    training data, a file in the way, or a folder that cannot be created."""
    out_dir = Path(out_dir)
    check_outside_data(out_dir, data)
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"--out {out_dir} is a file, not a run folder")
        if not out_dir.exists() or overwrite or not any(out_dir.iterdir()):
            out_dir.mkdir(parents=True, exist_ok=True)
            return out_dir
        for number in range(2, 10_000):
            candidate = out_dir.with_name(f"{out_dir.name}-{number}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
    except OSError as error:
        raise UsageError(f"cannot create the run folder {out_dir}: {error.strerror or error}") from None
    raise UsageError(f"{out_dir} and 9,998 numbered run folders beside it exist: choose another --out")
