"""Face detectors you trained: a `maskmodel train-detector` run directory (or its `model.json`).

The run's `model.json` is the detector's card, the same contract as a manifest entry of the zoo: the task
(`face-detection`), the detector class that runs it (`centerface`), the ONNX file's name, sha256 and size.
`detector_file` checks the file against the card before anything runs it, as the zoo checks its downloads.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from maskmodel.errors import UsageError
from maskmodel.runtime.files import read_regular_file

CARD_NAME = "model.json"
MAX_CARD_BYTES = 1 << 20
MAX_DETECTOR_BYTES = 256 << 20


def _folder(spec: str | os.PathLike) -> Path:
    path = Path(spec)
    return path.parent if path.name == CARD_NAME else path


def is_local_detector(spec: str | os.PathLike) -> bool:
    """Whether `spec` is a folder (or its `model.json`) whose card is a face detector's."""
    folder = _folder(spec)
    if not (folder / CARD_NAME).is_file():
        return False
    try:
        return detector_card(folder).get("task") == "face-detection"
    except UsageError:
        return False


def detector_card(spec: str | os.PathLike) -> dict:
    """The card (`model.json`) of a trained detector, checked to name a face detector's ONNX file.

    Raises:
        UsageError: no card, one that is not JSON, or not a face detector's.
    """
    card_path = _folder(spec) / CARD_NAME
    try:
        card = json.loads(read_regular_file(card_path, MAX_CARD_BYTES).decode("utf-8"))
    except (ValueError, OSError) as error:
        raise UsageError(f"{card_path} is not a detector card ({error})") from None
    onnx = card.get("files", {}).get("onnx", {}) if isinstance(card, dict) else {}
    if not isinstance(card, dict) or card.get("task") != "face-detection" or card.get("detector") != "centerface" \
            or not isinstance(onnx, dict) or not isinstance(onnx.get("file"), str) or not isinstance(onnx.get("sha256"), str):
        raise UsageError(f"{card_path} is not the card of a maskmodel train-detector run (task face-detection, "
                         "detector centerface, files.onnx with file and sha256)")
    return card


def detector_file(spec: str | os.PathLike) -> Path:
    """The ONNX file of a trained detector, checked against its card's sha256.

    Raises:
        UsageError: the card is not a detector's, the file is missing, not a regular file inside the run
            folder, or its sha256 differs (a damaged or replaced file).
    """
    folder = _folder(spec)
    record = detector_card(folder)["files"]["onnx"]
    name = record["file"]
    if Path(name).name != name:
        raise UsageError(f"{folder / CARD_NAME} names {name!r}: expected a file name inside {folder}")
    path = folder / name
    try:
        data = read_regular_file(path, MAX_DETECTOR_BYTES)
    except OSError as error:
        raise UsageError(f"the detector of {folder} cannot be read: {error}") from None
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise UsageError(f"{path} does not match the sha256 of its card {folder / CARD_NAME}: the file is damaged "
                         "or was replaced; train again or restore it")
    return path
