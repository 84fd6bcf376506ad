"""The schema of a classifier's contract: the `classes` and `input` fields of a manifest entry or of a
trained run's `model.json`, checked wherever a model is loaded.

Class names become folder and file names (`crops/<class>/`, `classes.txt`, captions), so they are
short, unique, printable, without path separators, and never `.`, `..` or hidden names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from maskmodel.errors import UsageError

MAX_CLASSES = 32
MAX_CLASS_NAME = 64
INPUT_SIZES = (8, 1024)  # the classifier's square input, in pixels
MAX_CROP_MARGIN = 2.0


def class_names_problem(classes: object) -> str | None:
    """Why `classes` cannot be a classifier's class names, or `None` when they can."""
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        return f"classes must be a list of names, not {type(classes).__name__}"
    if not 2 <= len(classes) <= MAX_CLASSES:
        return f"a classifier has 2 to {MAX_CLASSES} classes, not {len(classes)}"
    for name in classes:
        if not isinstance(name, str):
            return f"class name {name!r} is not text"
        if not 1 <= len(name) <= MAX_CLASS_NAME:
            return f"class name {name[:MAX_CLASS_NAME]!r} is not 1 to {MAX_CLASS_NAME} characters long"
        if not name.isprintable() or "/" in name or "\\" in name or name.startswith(".") or name.strip() != name:
            return (f"class name {name!r} is not usable as a folder name (printable characters, no path "
                    "separator, no leading dot or surrounding spaces)")
    if len(set(classes)) != len(classes):
        return f"class names repeat: {list(classes)}"
    return None


def input_problem(input: object) -> str | None:
    """Why `input` cannot be a classifier's input contract (`size`, `crop`), or `None` when it can."""
    if not isinstance(input, dict):
        return "input must be an object with size and crop"
    size, crop = input.get("size"), input.get("crop")
    if type(size) is not int or not INPUT_SIZES[0] <= size <= INPUT_SIZES[1]:
        return f"input size must be a whole number of pixels from {INPUT_SIZES[0]} to {INPUT_SIZES[1]}, not {size!r}"
    if not isinstance(crop, dict) or not isinstance(crop.get("square"), bool):
        return "input crop must be an object with margin and square (true or false)"
    margin = crop.get("margin")
    if (type(margin) not in (int, float) or not math.isfinite(margin)
            or not 0 <= margin <= MAX_CROP_MARGIN):
        return f"input crop margin must be a number from 0 to {MAX_CROP_MARGIN}, not {margin!r}"
    return None


def check_contract(record: object, source: str) -> None:
    """Check a classifier's record (`task`, `classes`, `input`); raises `UsageError` naming `source`."""
    if not isinstance(record, dict):
        raise UsageError(f"{source} is not a model contract (expected a JSON object)")
    if record.get("task", "classification") != "classification":
        raise UsageError(f"{source} does not describe a mask classifier (task {record.get('task')!r})")
    problem = class_names_problem(record.get("classes")) or input_problem(record.get("input"))
    if problem:
        raise UsageError(f"{source} is not a usable model contract: {problem}")
