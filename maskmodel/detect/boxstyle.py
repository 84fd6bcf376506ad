"""Box style: how a detector's face boxes sit relative to the boxes people annotate.

Detectors and annotated sets draw faces differently (on crowd-dev every detector's boxes sit about a
tenth of a face height above the annotations; hand-labelled sets often draw hair to chin), and AP at
IoU 0.5 punishes it. A `BoxAdjust` moves and scales every predicted box relative to its own size;
`fit_box_adjust` measures one from matched pairs of predicted and annotated boxes (medians, so a few
bad matches do not move it). The classifier still sees the detector's own box (its crops are
detector-aligned); the adjustment changes the boxes drawn, reported and evaluated. By default nothing is
adjusted: the reported boxes are the detector's own.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from maskmodel.errors import UsageError
from maskmodel.runtime.files import read_regular_file

MAX_SHIFT, MAX_SCALE = 10.0, 100.0  # box widths or heights


@dataclass(frozen=True)
class BoxAdjust:
    """Move a box's centre by `dx` widths and `dy` heights, then scale its width by `sw` and height by `sh`."""

    dx: float = 0.0
    dy: float = 0.0
    sw: float = 1.0
    sh: float = 1.0

    def __post_init__(self) -> None:  # the one schema of a box style, whether typed, parsed or read from a file
        values = (self.dx, self.dy, self.sw, self.sh)
        if (not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
                or max(abs(self.dx), abs(self.dy)) > MAX_SHIFT or not all(0 < v <= MAX_SCALE for v in values[2:])):
            raise UsageError(f"Expected DX,DY,SW,SH with DX, DY finite in [-{MAX_SHIFT}, {MAX_SHIFT}] and SW, SH in "
                             f"(0, {MAX_SCALE}]. Received: dx={self.dx!r}, dy={self.dy!r}, sw={self.sw!r}, sh={self.sh!r}")

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        """`(N, >=4)` boxes `x1, y1, x2, y2, ...` adjusted (extra columns kept)."""
        boxes = np.array(boxes, dtype=np.float32)
        if self.is_identity() or len(boxes) == 0:
            return boxes
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 + self.dx * width
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 + self.dy * height
        half_w, half_h = width * self.sw / 2, height * self.sh / 2
        boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3] = cx - half_w, cy - half_h, cx + half_w, cy + half_h
        return boxes

    def then(self, other: BoxAdjust) -> BoxAdjust:
        """The adjustment that applies `self`, then `other`."""
        return BoxAdjust(round(self.dx + other.dx * self.sw, 4), round(self.dy + other.dy * self.sh, 4),
                         round(self.sw * other.sw, 4), round(self.sh * other.sh, 4))

    def is_identity(self) -> bool:
        return (self.dx, self.dy, self.sw, self.sh) == (0.0, 0.0, 1.0, 1.0)

    def save(self, path: str | os.PathLike, **notes: object) -> None:
        """Write a calibration file (JSON: `dx`, `dy`, `sw`, `sh`, plus `notes`), whole: under a temporary
        name first, so a symlink in its place is replaced, never written through."""
        from maskmodel.runtime.files import write_file_atomic

        write_file_atomic(path, (json.dumps({**asdict(self), **notes}, indent=2) + "\n").encode())

    @classmethod
    def parse(cls, text: str, detector: str | None = None) -> BoxAdjust:
        """From `"DX,DY,SW,SH"`, `"none"` (no adjustment), a shipped style's name (`BOX_STYLES`, fitted per
        detector: `detector` names it) or the path of a calibration file."""
        if text == "none":
            return cls()
        if text in BOX_STYLES:
            fitted = BOX_STYLES[text]
            if detector not in fitted:
                raise UsageError(f"The {text!r} box style is fitted for the {' and '.join(fitted)} detectors only. "
                                 f"Received: detector={detector!r}")
            return fitted[detector]
        if os.path.exists(text):
            try:
                data = json.loads(read_regular_file(text, 1 << 16).decode("utf-8"))
            except (OSError, ValueError) as error:
                raise UsageError(f"{text} is not a box calibration file: {error}") from None
            values = [data.get(key) for key in ("dx", "dy", "sw", "sh")] if isinstance(data, dict) else []
            if not values or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
                raise UsageError(f"{text} is not a box calibration file: expected a JSON object with numbers dx, dy, "
                                 "sw and sh (written by `evaluate detect --fit-box`)")
            return cls(*(float(v) for v in values))
        try:
            values = [float(part) for part in text.split(",")]
        except ValueError:
            values = []
        if len(values) != 4:
            raise UsageError(f"Expected DX,DY,SW,SH, 'none', a style name ({', '.join(BOX_STYLES)}) or a calibration "
                             f"file. Received: {text!r}")
        return cls(*values)


# Shipped box styles, by name and detector: the adjustment fitted on one annotated set's boxes
# (`evaluate detect --fit-box`, the detector's default settings, its own boxes). Reported boxes are the
# detector's own unless a style is asked for (`--box-adjust crowd-dev`): a user's photos are labelled by
# someone else, or by no one, and CenterFace and YuNet draw in the WIDER FACE convention most face sets
# share. "crowd-dev": the andrewmvd Kaggle set's annotators, whose boxes sit lower (docs/benchmarks.md).
BOX_STYLES: dict[str, dict[str, BoxAdjust]] = {
    "crowd-dev": {
        "centerface": BoxAdjust(dx=0.0328, dy=0.116, sw=1.0494, sh=0.9405),
        "yunet": BoxAdjust(dx=0.0268, dy=0.1298, sw=1.0396, sh=0.895),
    },
}


def box_offsets(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per pair of `(N, 4)` boxes: the `BoxAdjust` values (dx, dy, sw, sh) that turn `predicted` into `truth`."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    width, height = predicted[:, 2] - predicted[:, 0], predicted[:, 3] - predicted[:, 1]
    dx = ((truth[:, 0] + truth[:, 2]) - (predicted[:, 0] + predicted[:, 2])) / 2 / width
    dy = ((truth[:, 1] + truth[:, 3]) - (predicted[:, 1] + predicted[:, 3])) / 2 / height
    return np.column_stack([dx, dy, (truth[:, 2] - truth[:, 0]) / width, (truth[:, 3] - truth[:, 1]) / height])


def fit_box_adjust(predicted: np.ndarray, truth: np.ndarray) -> BoxAdjust:
    """The median `BoxAdjust` of matched pairs of predicted and annotated `(N, 4)` boxes (identity if none)."""
    if len(predicted) == 0:
        return BoxAdjust()
    return BoxAdjust(*(round(float(v), 4) for v in np.median(box_offsets(predicted, truth), axis=0)))
