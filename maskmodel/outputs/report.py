"""The annotate report: one CSV row per face, or one per image without faces or with an error.
`report_rows` renders the `ImageResult` of one input file as its rows: no other module makes rows.

Rows are appended and flushed as images finish, so an interrupted run keeps what it wrote and
`--resume` can skip the images already reported. Each row says how many rows its image has (`rows`),
so an image is done only when all of them are there; a report with damaged records before its last
image is refused rather than trusted.

Cells are safe to open in a spreadsheet: a text cell that begins with `=`, `+`, `-`, `@`, a tab, a
carriage return or `'` gets a leading `'` (OWASP's advice against formula injection); remove that one
character to recover the path (`original_path`).
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

from maskmodel.errors import UsageError
from maskmodel.io.crawl import VIDEO_EXTENSIONS
from maskmodel.io.layout import is_safe_relative
from maskmodel.io.ownfiles import open_own_file, read_own_file, replace_own_file
from maskmodel.results import STATUS_ERROR, STATUS_NO_FACE, STATUS_OK, Face, Frame, ImageResult

if TYPE_CHECKING:
    from maskmodel.io.storage import RemoteFolder

COLUMNS = (
    "path", "status", "face", "frame", "time_s", "track", "x1", "y1", "x2", "y2", "score", "label",
    "p_with_mask", "p_without_mask", "p_mask_incorrect", "width", "height", "detector", "model", "message",
    "output", "rows",
)
WORKER_DIED = "the worker process died {} times on this file"  # retried by --resume
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_TEXT_COLUMNS = ("label", "detector", "model", "message")


class ReportError(UsageError):
    """An existing report cannot be resumed: it holds damaged records (not a torn last one)."""
MAX_REPORT_BYTES = 1 << 32
PARTS_FOLDER = "report.parts"  # a remote report's records, uploaded during the run (`ReportMirror`)
MIN_TRACK_FRAMES = 2


def report_rows(result: ImageResult) -> list[dict]:
    """The report rows of one input file: one per face, or one `no_face` or `error` row."""
    if result.status == STATUS_ERROR:
        return [_error_row(result.path, result.message)]
    return _image_rows(result.path, result.faces, *result.size, result.detector, result.model, result.frames,
                       result.output)


def _image_rows(relative: str, faces: tuple[Face, ...], width: int, height: int, detector: str, model: str,
                frames: tuple[Frame, ...] | None = None, output: str | None = None) -> list[dict]:
    """Report rows of one processed image or video: one per face, or one `no_face` row.

    For a video, `frames` gives each face's frame, in frame order; its `face` numbers restart at 0
    each frame. `output` is the name of the annotated copy written, if any.
    """
    in_frame = [0] * len(faces)  # a video's face index restarts each frame
    for index in range(1, len(faces) if frames else 0):
        in_frame[index] = in_frame[index - 1] + 1 if frames[index].index == frames[index - 1].index else 0
    common = {"path": report_path_text(relative), "width": width, "height": height, "detector": detector,
              "model": model, "output": report_path_text(output) if output else None}
    if not faces:
        return [{**common, "status": STATUS_NO_FACE}]
    return [
        {
            **common,
            "status": STATUS_OK,
            "face": in_frame[index] if frames else index,
            **({} if frames is None else {"frame": frames[index].index, "time_s": round(frames[index].seconds, 3),
                                          "track": face.track}),
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


def is_video_path(cell: str) -> bool:
    """Whether a report path names a video (by its extension)."""
    return Path(cell).suffix.lower() in VIDEO_EXTENSIONS


def _error_row(relative: str, message: str) -> dict:
    """The report row of an image that could not be processed."""
    return {"path": report_path_text(relative), "status": STATUS_ERROR, "message": message}


def report_path_text(relative: str) -> str:
    """A relative path as written in the report: valid UTF-8 even for names that are not, so the CSV
    always parses, distinct for distinct names, and safe to open in a spreadsheet (`spreadsheet_safe`).

    A name that is valid UTF-8 and holds no backslash is written as it is. In any other name every
    backslash is doubled and every undecodable byte written as `\\xNN`: such a text always holds a
    backslash, so it never equals a name written as it is, and `path_bytes` gives the bytes back."""
    raw = relative.encode("utf-8", "surrogateescape")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\\" in text:
        text = raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return spreadsheet_safe(text)


def path_bytes(cell: str) -> bytes:
    """The file name bytes of a report's `path` or `output` cell (undoes `report_path_text`)."""
    text = original_path(cell)
    if "\\" not in text:
        return text.encode("utf-8")
    out, position = bytearray(), 0
    while position < len(text):
        if text.startswith("\\\\", position):
            out += b"\\"
            position += 2
        elif text.startswith("\\x", position):
            out.append(int(text[position + 2:position + 4], 16))
            position += 4
        else:
            out += text[position].encode("utf-8")
            position += 1
    return bytes(out)


def spreadsheet_safe(text: str) -> str:
    """`text` with a leading `'` if it begins like a formula (or with `'` itself, so that removing one
    leading `'` always gives the text back)."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def original_path(cell: str) -> str:
    """The path of a report's `path` or `output` cell (undoes `spreadsheet_safe`)."""
    return cell[1:] if cell.startswith("'") else cell


def _image_blocks(report_path: Path) -> list[list[dict]]:
    """The complete rows of an existing report, grouped by image in file order.

    A run killed while writing (or stopped by a full disk) leaves at most a damaged last image: a
    torn record, missing columns, or fewer rows than its `rows` count. That image is dropped, so that
    it is processed again. Damage anywhere else (NUL bytes, records mixed by two runs at once) raises
    `ReportError`, and so does a path or output name that is not a relative path inside the output
    folder, or a path reported for two images: the report is read back like any input.
    """
    data = read_own_file(report_path, MAX_REPORT_BYTES) or b""
    text = data.decode("utf-8", errors="replace")
    blocks: list[list[dict]] = []
    lines: list[int] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if blocks and blocks[-1][0]["path"] == row["path"]:
                blocks[-1].append(row)
            else:
                blocks.append([row])
                lines.append(reader.line_num)
    except csv.Error as error:
        raise ReportError(f"{report_path} is damaged near line {reader.line_num} ({error})") from None
    if reader.fieldnames and list(reader.fieldnames) != list(COLUMNS):
        raise ReportError(f"{report_path} has other columns than this version writes; use another --out")
    if blocks and (not text.endswith("\r\n") or not _complete(blocks[-1])):
        blocks.pop()
    seen: set[str] = set()
    for block, line in zip(blocks, lines):
        if not _complete(block):
            raise ReportError(f"{report_path} is damaged at line {line} ({block[0]['path']!r}): it was written by "
                              "two runs at once or edited; move it away and run again, or use --overwrite")
        problem = _names_problem(block[0], seen)
        if problem:
            raise ReportError(f"{report_path} is damaged at line {line}: {problem}; move it away and run again, "
                              "or use --overwrite")
        seen.add(block[0]["path"])
    return blocks


def _names_problem(row: dict, seen: set[str]) -> str | None:
    """Why the `path` and `output` cells of an image's first row cannot be this version's, or None."""
    path, output = original_path(row["path"]), original_path(row["output"])
    if not is_safe_relative(path):
        return f"the path {path!r} is not a relative path inside the output folder"
    if output and not is_safe_relative(output):
        return f"the output {output!r} is not a relative path inside the output folder"
    if path.split("/")[0] == ".maskmodel" or output.split("/")[0] == ".maskmodel":
        return f"{path!r} names the state folder .maskmodel"
    if row["path"] in seen:
        return f"the path {path!r} is reported for two images"
    return None


def _complete(block: list[dict]) -> bool:
    """Whether an image's rows are whole: every column, no NUL, a known status, `rows` of them."""
    for row in block:
        if None in row or None in row.values() or any("\0" in value for value in row.values()):
            return False
        if row["status"] not in (STATUS_OK, STATUS_NO_FACE, STATUS_ERROR) or row["rows"] != str(len(block)):
            return False
    return True


def _retryable(block: list[dict]) -> bool:
    return block[0]["status"] == STATUS_ERROR and block[0]["message"].startswith(WORKER_DIED.split("{")[0])


def prepare_resume(report_path: Path, temp_prefix: str = ".maskmodel-tmp-") -> set[str]:
    """Paths already fully reported (for `--resume`). A damaged last image and the images whose worker
    process died are removed from the report first (a new file named `temp_prefix...`, renamed over it),
    so they are done again."""
    blocks = [block for block in read_report(report_path) if not _retryable(block)]
    if not blocks and not os.path.lexists(report_path):
        return set()
    stream = io.StringIO(newline="")
    writer = csv.DictWriter(stream, fieldnames=COLUMNS)
    writer.writeheader()
    for block in blocks:
        writer.writerows(block)
    replace_own_file(report_path, stream.getvalue().encode("utf-8"), temp_prefix)
    return {block[0]["path"] for block in blocks}


def read_report(report_path: Path) -> list[list[dict]]:
    """The rows of a report, grouped by image (a damaged last image left out)."""
    return _image_blocks(report_path)


class ReportWriter:
    """Append rows to `report.csv`: the rows of one image in one write; a failed write is cut back,
    so an image's rows are in the file whole or not at all. The report is never opened through a
    symlink."""

    def __init__(self, path: Path, append: bool) -> None:
        self.path = path
        try:
            self._handle = open_own_file(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0))
        except UsageError:
            raise
        except OSError as error:
            raise OSError(f"cannot write the report {path}: {error.strerror or error}") from None
        if not (append and os.fstat(self._handle).st_size > 0):
            os.ftruncate(self._handle, 0)
            self._append(",".join(COLUMNS) + "\r\n")

    def write(self, rows: list[dict]) -> None:
        """Append the rows of one image (each gets the `rows` count and spreadsheet-safe text)."""
        buffer = io.StringIO()
        safe = [{**row, "rows": len(rows), **{key: spreadsheet_safe(row[key].replace("\0", "\\0"))
                                             for key in _TEXT_COLUMNS if isinstance(row.get(key), str)}}
                for row in rows]
        csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="raise").writerows(safe)
        self._append(buffer.getvalue())

    def _append(self, text: str) -> None:
        data = memoryview(text.encode("utf-8", "backslashreplace"))
        start = os.lseek(self._handle, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(self._handle, data):]
        except OSError as error:
            try:
                os.ftruncate(self._handle, start)
            except OSError:  # the rows count still marks the image as incomplete on resume
                pass
            raise OSError(f"cannot write the report {self.path}: {error.strerror or error}") from None

    def close(self) -> None:
        os.close(self._handle)


@dataclass
class Summary:
    """Counts of a report. In videos, people are counted, not face-frames: a face tracked over at least
    `MIN_TRACK_FRAMES` processed frames counts once, with the label it carried most often.

    `images` counts images and `videos` videos (with `video_frames`, their processed frames that hold a
    face); these and the other counts describe the whole report (after `--resume` too); `processed` and
    `seconds` describe this run, and `skipped_files` the files of the input folders that were not
    images or videos, by extension. Only `with_mask` faces are compliant: `mask_incorrect` (a
    three-class model's mask below the nose) is counted on its own and, like `without_mask`, lowers
    the compliance rate.
    """

    images: int = 0
    videos: int = 0
    video_frames: int = 0
    faces: int = 0
    labels: Counter = field(default_factory=Counter)
    no_face: int = 0
    errors: list[str] = field(default_factory=list)
    processed: int = 0
    seconds: float = 0.0
    skipped_files: Counter = field(default_factory=Counter)

    @classmethod
    def of_blocks(cls, blocks: list[list[dict]]) -> Summary:
        """The counts of a report's images (its rows grouped by image, as `read_report` gives them)."""
        summary = cls()
        for block in blocks:
            summary.add(block)
        return summary

    def add(self, rows: list[dict]) -> None:
        video = is_video_path(rows[0]["path"])
        if video:
            self.videos += 1
            self.video_frames += len({row["frame"] for row in rows if row.get("frame") not in (None, "")})
        else:
            self.images += 1
        status = rows[0]["status"]
        if status == STATUS_ERROR:
            self.errors.append(f"{rows[0]['path']}: {rows[0]['message']}")
        elif status == STATUS_NO_FACE:
            self.no_face += 1
        elif video:  # faces no track took (low scores that continued none) not counted
            tracks: dict[str, Counter] = {}
            for row in rows:
                if row.get("track") not in (None, ""):
                    tracks.setdefault(str(row["track"]), Counter())[row["label"]] += 1
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
            "videos": self.videos,
            "video_frames_with_faces": self.video_frames,
            "faces": self.faces,
            "with_mask": masked,
            "without_mask": self.labels.get("without_mask", 0),
            "mask_incorrect": self.labels.get("mask_incorrect", 0),
            "compliance_rate": round(masked / self.faces, 4) if self.faces else None,
            "images_without_faces": self.no_face,
            "errors": len(self.errors),
            "failed": self.errors,
            "processed_this_run": self.processed,
            "skipped_files": dict(sorted(self.skipped_files.items())),
            "seconds": round(self.seconds, 2),
            "images_per_second": round(self.processed / self.seconds, 2) if self.seconds else None,
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
