"""The annotate report: one CSV row per face, or one per image without faces or with an error.

Rows are appended and flushed as images finish, so an interrupted run keeps what it wrote and
`--resume` can skip the images already reported.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from maskmodel.pipeline import Face

if TYPE_CHECKING:
    from maskmodel.outputs import RemoteFolder

COLUMNS = (
    "path", "status", "face", "frame", "time_s", "track", "x1", "y1", "x2", "y2", "score", "label",
    "p_with_mask", "p_without_mask", "p_mask_incorrect", "width", "height", "detector", "model", "message",
)
STATUS_OK, STATUS_NO_FACE, STATUS_ERROR = "ok", "no_face", "error"
PARTS_FOLDER = "report.parts"  # a remote report's records, uploaded during the run (`ReportMirror`)
MIN_TRACK_FRAMES = 2


def image_rows(relative: str, faces: list[Face], width: int, height: int, detector: str, model: str,
               frames: list[tuple[int, float, int]] | None = None) -> list[dict]:
    """Report rows of one processed image or video: one per face, or one `no_face` row.

    For a video, `frames` gives each face's (frame index, time in seconds, track id).
    """
    common = {"path": report_path_text(relative), "width": width, "height": height, "detector": detector, "model": model}
    if not faces:
        return [{**common, "status": STATUS_NO_FACE}]
    return [
        {
            **common,
            "status": STATUS_OK,
            "face": index,
            **({} if frames is None else dict(zip(("frame", "time_s", "track"),
                                                  (frames[index][0], round(frames[index][1], 3), frames[index][2])))),
            **{key: round(value, 1) for key, value in zip(("x1", "y1", "x2", "y2"), face.box)},
            "score": round(face.score, 4),
            "label": face.label,
            "p_with_mask": round(face.probabilities.get("with_mask", float("nan")), 4),
            "p_without_mask": round(face.probabilities.get("without_mask", float("nan")), 4),
            **({"p_mask_incorrect": round(face.probabilities["mask_incorrect"], 4)}
               if "mask_incorrect" in face.probabilities else {}),
        }
        for index, face in enumerate(faces)
    ]


def error_row(relative: str, message: str) -> dict:
    """The report row of an image that could not be processed."""
    return {"path": report_path_text(relative), "status": STATUS_ERROR, "message": message}


def report_path_text(relative: str) -> str:
    """A relative path as written in the report: valid UTF-8 even for names that are not
    (undecodable bytes appear as backslash escapes), so the CSV always parses."""
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _image_blocks(report_path: Path) -> list[list[dict]]:
    """The complete rows of an existing report, grouped by image in file order.

    A run killed while writing leaves at most a torn last record: the file then does not end with a
    record terminator, or its last record does not parse into all the columns. The rows of that
    image are dropped, so that it is processed again.
    """
    with open(report_path, newline="", encoding="utf-8", errors="replace") as stream:
        text = stream.read()
    torn = not text.endswith("\r\n")
    blocks: list[list[dict]] = []
    try:
        for row in csv.DictReader(io.StringIO(text, newline="")):
            if blocks and blocks[-1][0]["path"] == row["path"]:
                blocks[-1].append(row)
            else:
                blocks.append([row])
    except csv.Error:
        torn = True
    if blocks and (torn or any(None in row or None in row.values() for row in blocks[-1])):
        blocks.pop()
    return blocks


def prepare_resume(report_path: Path) -> set[str]:
    """Paths already fully reported (for `--resume`); a torn tail is removed from the report first."""
    if not report_path.exists() or report_path.stat().st_size == 0:
        return set()
    blocks = _image_blocks(report_path)
    temporary = report_path.with_name(f".{report_path.name}.tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        for block in blocks:
            writer.writerows(block)
    os.replace(temporary, report_path)
    return {block[0]["path"] for block in blocks}


class ReportWriter:
    """Append rows to `report.csv`: the rows of one image in a single write, flushed at once."""

    def __init__(self, path: Path, append: bool) -> None:
        self.path = path
        exists = append and path.exists() and path.stat().st_size > 0
        self._stream = open(path, "a" if exists else "w", newline="", encoding="utf-8")
        if not exists:
            csv.DictWriter(self._stream, fieldnames=COLUMNS).writeheader()
            self._stream.flush()

    def write(self, rows: list[dict]) -> None:
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="raise").writerows(rows)
        try:
            self._stream.write(buffer.getvalue())
            self._stream.flush()
        except OSError as error:
            raise OSError(f"cannot write the report {self.path}: {error.strerror or error}") from None

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError:  # the failed write has raised already; a torn record is dropped on resume
            pass


@dataclass
class Summary:
    """Counts of one run. In videos, people are counted, not face-frames: a face tracked over at least
    `MIN_TRACK_FRAMES` processed frames counts once, with the label it carried most often.

    Only `with_mask` faces are compliant: `mask_incorrect` (a three-class model's mask below the nose)
    is counted on its own and, like `without_mask`, lowers the compliance rate."""

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
        elif rows[0].get("track") is not None:
            tracks: dict[int, Counter] = {}
            for row in rows:
                tracks.setdefault(row["track"], Counter())[row["label"]] += 1
            people = [c.most_common(1)[0][0] for c in tracks.values() if sum(c.values()) >= MIN_TRACK_FRAMES]
            self.faces += len(people)
            self.labels.update(people)
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
            "mask_incorrect": self.labels.get("mask_incorrect", 0),
            "compliance_rate": round(masked / self.faces, 4) if self.faces else None,
            "images_without_faces": self.no_face,
            "errors": len(self.errors),
            "failed": self.errors,
            "seconds": round(self.seconds, 2),
            "images_per_second": round(self.images / self.seconds, 2) if self.seconds else None,
        }


class ReportMirror:
    """Keeps the report in a remote folder in step with the local copy being written.

    Remote filesystems cannot append, so new complete records go up as numbered part files
    (`report.parts/000001.csv`, ...) at most every `interval` seconds, and `publish` uploads the whole
    report and removes the parts. A driver killed mid-run loses at most `interval` seconds of rows,
    and `--resume` processes those images again.
    """

    def __init__(self, folder: RemoteFolder, local: Path, name: str, interval: float = 60.0) -> None:
        self.folder, self.local, self.name, self.interval = folder, local, name, interval
        self._sent = 0
        self._parts = 0
        self._last = time.monotonic()

    def restore(self) -> None:
        """Download the remote report, followed by the parts a killed run left, into the local copy."""
        with open(self.local, "wb") as stream:
            stream.write(self.folder.read_bytes(self.name) or b"")
            for part in self.folder.list_files(PARTS_FOLDER):
                stream.write(self.folder.read_bytes(part))

    def sync(self) -> None:
        """Upload the records written since the last upload, if `interval` seconds have passed."""
        if time.monotonic() - self._last < self.interval:
            return
        self._last = time.monotonic()
        with open(self.local, "rb") as stream:
            stream.seek(self._sent)
            new = stream.read()
        if new:
            self._parts += 1
            self.folder.write_bytes(f"{PARTS_FOLDER}/{self._parts:06d}.csv", new)
            self._sent += len(new)

    def publish(self) -> None:
        """Upload the whole report and remove the parts."""
        data = self.local.read_bytes() if self.local.exists() else b""
        self.folder.write_bytes(self.name, data)
        for part in self.folder.list_files(PARTS_FOLDER):
            self.folder.delete(part)
        self._sent, self._parts = len(data), 0
