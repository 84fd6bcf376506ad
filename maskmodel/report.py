"""The annotate report: one CSV row per face, or one per image without faces or with an error.

Rows are appended and flushed as images finish, so an interrupted run keeps what it wrote and
`--resume` can skip the images already reported.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from maskmodel.pipeline import Face

COLUMNS = (
    "path", "status", "face", "x1", "y1", "x2", "y2", "score", "label",
    "p_with_mask", "p_without_mask", "width", "height", "detector", "model", "message",
)
STATUS_OK, STATUS_NO_FACE, STATUS_ERROR = "ok", "no_face", "error"


def image_rows(relative: str, faces: list[Face], width: int, height: int, detector: str, model: str) -> list[dict]:
    """Report rows of one processed image: one per face, or one `no_face` row."""
    common = {"path": relative, "width": width, "height": height, "detector": detector, "model": model}
    if not faces:
        return [{**common, "status": STATUS_NO_FACE}]
    return [
        {
            **common,
            "status": STATUS_OK,
            "face": index,
            **{key: round(value, 1) for key, value in zip(("x1", "y1", "x2", "y2"), face.box)},
            "score": round(face.score, 4),
            "label": face.label,
            "p_with_mask": round(face.probabilities.get("with_mask", float("nan")), 4),
            "p_without_mask": round(face.probabilities.get("without_mask", float("nan")), 4),
        }
        for index, face in enumerate(faces)
    ]


def error_row(relative: str, message: str) -> dict:
    """The report row of an image that could not be processed."""
    return {"path": relative, "status": STATUS_ERROR, "message": message}


def reported_paths(report_path: Path) -> set[str]:
    """Paths that already have rows in an existing report (for `--resume`)."""
    if not report_path.exists():
        return set()
    with open(report_path, newline="", encoding="utf-8") as stream:
        return {row["path"] for row in csv.DictReader(stream)}


class ReportWriter:
    """Append rows to `report.csv`, flushing after each image."""

    def __init__(self, path: Path, append: bool) -> None:
        exists = append and path.exists() and path.stat().st_size > 0
        self._stream = open(path, "a" if exists else "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._stream, fieldnames=COLUMNS, extrasaction="raise")
        if not exists:
            self._writer.writeheader()

    def write(self, rows: list[dict]) -> None:
        self._writer.writerows(rows)
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


@dataclass
class Summary:
    """Counts of one run."""

    images: int = 0
    faces: int = 0
    labels: Counter = field(default_factory=Counter)
    no_face: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, rows: list[dict]) -> None:
        self.images += 1
        status = rows[0]["status"]
        if status == STATUS_ERROR:
            self.errors.append(f"{rows[0]['path']}: {rows[0]['message']}")
        elif status == STATUS_NO_FACE:
            self.no_face += 1
        else:
            self.faces += len(rows)
            self.labels.update(row["label"] for row in rows)

    def to_dict(self) -> dict:
        masked = self.labels.get("with_mask", 0)
        return {
            "images": self.images,
            "faces": self.faces,
            "with_mask": masked,
            "without_mask": self.labels.get("without_mask", 0),
            "compliance_rate": round(masked / self.faces, 4) if self.faces else None,
            "images_without_faces": self.no_face,
            "errors": len(self.errors),
            "failed": self.errors,
            "seconds": round(self.seconds, 2),
            "images_per_second": round(self.images / self.seconds, 2) if self.seconds else None,
        }
