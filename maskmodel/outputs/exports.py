"""What `annotate --save ...` writes beside `report.csv`, all derived from the report rows so that a
resumed run gives the same files:

- `labels/<input path>.txt` (`--save yolo`): `class cx cy w h` lines, relative, with `classes.txt`;
- `annotations/<input path>.xml` (`--save voc`): PASCAL VOC, `<filename>` the input's report path
  (characters XML 1.0 cannot hold, such as control characters, as `\\xNN`: `xml_text`);
- `predictions.coco.json` (`--save coco`): COCO images, categories and annotations with a `score`
  (load it with `pycocotools.coco.COCO`; its `annotations` list is a COCO results list);
- `results.jsonl` (`--save-json`): one JSON record per image or video with its faces (and a video's
  per-track summary);
- `crops/<class>/<input path>_<face>.jpg` (`--save-crops`): face crops cut as the classifier sees
  them, at their own resolution, a folder per class (a `maskmodel train` dataset).

Per-image label files are written as each image is reported; the run-level files are rebuilt from the
whole `report.csv` at the end. Videos appear in `results.jsonl` only (the label formats are for images).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
from collections import Counter
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from maskmodel.io.layout import in_another_run, is_safe_relative
from maskmodel.io.runstate import STATE_FOLDER, RunState
from maskmodel.outputs.report import STATUS_ERROR, STATUS_OK, is_video_path, original_path, path_bytes

if TYPE_CHECKING:
    from maskmodel.io.storage import LocalFolder, RemoteFolder

EXPORT_FORMATS = ("coco", "yolo", "voc")
CLASSES_NAME, COCO_NAME, JSONL_NAME = "classes.txt", "predictions.coco.json", "results.jsonl"
LOW_CONFIDENCE = 0.75  # faces whose label probability is below this are listed for review


def _given(value) -> bool:
    return value is not None and value != ""


def is_video_block(rows: list[dict]) -> bool:
    """Whether a report block is a video's."""
    return is_video_path(original_path(rows[0]["path"]))


def probabilities(row: dict) -> dict[str, float]:
    """A row's class probabilities, from its `p_<class>` columns."""
    return {key[2:]: float(value) for key, value in row.items()
            if key.startswith("p_") and _given(value) and not math.isnan(float(value))}


def box(row: dict) -> tuple[float, float, float, float]:
    return tuple(float(row[key]) for key in ("x1", "y1", "x2", "y2"))


def _stem_name(relative: str, folder: str, suffix: str) -> str:
    path = PurePosixPath(relative)
    return str(PurePosixPath(folder) / path.parent / f"{path.stem}{suffix}")


def label_names(relative: str, formats: tuple[str, ...]) -> list[str]:
    """The per-image label files of an input (its report path, `relative`) for `formats`."""
    return [_stem_name(relative, "labels", ".txt")] * ("yolo" in formats) + \
           [_stem_name(relative, "annotations", ".xml")] * ("voc" in formats)


def crop_name(relative: str, face: int, label: str) -> str:
    """Where the crop of face `face` of an input goes: named by the input's whole file name, so `a.jpg` and
    `a.png` of one folder never share a crop name."""
    path = PurePosixPath(relative)
    return str(PurePosixPath("crops") / label / path.parent / f"{path.name}_{face}.jpg")


def run_names(formats: tuple[str, ...], save_json: bool) -> list[str]:
    """The run-level files for these options."""
    return [CLASSES_NAME] * ("yolo" in formats) + [COCO_NAME] * ("coco" in formats) + [JSONL_NAME] * save_json


def _clipped(row: dict) -> tuple[float, float, float, float] | None:
    width, height = float(row["width"]), float(row["height"])
    x1, y1, x2, y2 = box(row)
    x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(width, x2), min(height, y2)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def yolo_text(rows: list[dict], classes: list[str]) -> str:
    """YOLO label lines of one image's rows (boxes clipped to the image)."""
    lines = []
    width, height = float(rows[0]["width"]), float(rows[0]["height"])
    for row in rows:
        clipped = _clipped(row) if row["status"] == STATUS_OK else None
        if clipped is None:
            continue
        x1, y1, x2, y2 = clipped
        lines.append(f"{classes.index(row['label'])} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                     f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
    return "".join(line + "\n" for line in lines)


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # \r: parsers make it \n


def xml_text(text: str) -> str:
    """`text` as XML 1.0 holds it unchanged: the characters it cannot hold (control characters, lone
    surrogates, a carriage return its parsers would turn into a line feed) as `\\xNN` / `\\uNNNN`, with every
    backslash doubled when one is escaped (so the escape can be undone)."""
    if not _NOT_XML.search(text):
        return text
    return _NOT_XML.sub(lambda found: f"\\x{ord(found[0]):02x}" if ord(found[0]) < 0x100 else f"\\u{ord(found[0]):04x}",
                        text.replace("\\", "\\\\"))


def voc_xml(rows: list[dict]) -> bytes:
    """A PASCAL VOC annotation of one image's rows (boxes clipped to the image)."""
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "filename").text = xml_text(original_path(rows[0]["path"]))
    size = ElementTree.SubElement(root, "size")
    for key, value in (("width", rows[0]["width"]), ("height", rows[0]["height"]), ("depth", 3)):
        ElementTree.SubElement(size, key).text = str(value)
    for row in rows:
        clipped = _clipped(row) if row["status"] == STATUS_OK else None
        if clipped is None:
            continue
        item = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(item, "name").text = xml_text(row["label"])
        ElementTree.SubElement(item, "pose").text = "Unspecified"
        ElementTree.SubElement(item, "truncated").text = "0"
        ElementTree.SubElement(item, "difficult").text = "0"
        ElementTree.SubElement(item, "score").text = str(row["score"])
        bndbox = ElementTree.SubElement(item, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), clipped):
            ElementTree.SubElement(bndbox, key).text = f"{value:.1f}"
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def per_image_files(rows: list[dict], classes: list[str], formats: tuple[str, ...]) -> dict[str, bytes]:
    """The per-image label files (name → content) of one report block; none for videos and errors."""
    if rows[0]["status"] == STATUS_ERROR or is_video_block(rows):
        return {}
    relative = original_path(rows[0]["path"])
    files = {}
    if "yolo" in formats:
        files[_stem_name(relative, "labels", ".txt")] = yolo_text(rows, classes).encode()
    if "voc" in formats:
        files[_stem_name(relative, "annotations", ".xml")] = voc_xml(rows)
    return files


def coco_json(blocks: list[list[dict]], classes: list[str]) -> bytes:
    """COCO images, categories (ids from 1, in class order) and scored annotations of the image blocks."""
    images, annotations = [], []
    for rows in blocks:
        if rows[0]["status"] == STATUS_ERROR or is_video_block(rows):
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": original_path(rows[0]["path"]),
                       "width": int(rows[0]["width"]), "height": int(rows[0]["height"])})
        for row in rows:
            clipped = _clipped(row) if row["status"] == STATUS_OK else None
            if clipped is None:
                continue
            x1, y1, x2, y2 = clipped
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": classes.index(row["label"]) + 1,
                                "bbox": [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)],
                                "area": round((x2 - x1) * (y2 - y1), 1), "iscrowd": 0,
                                "score": float(row["score"])})
    categories = [{"id": index + 1, "name": name, "supercategory": "face"} for index, name in enumerate(classes)]
    return json.dumps({"info": {"description": "maskmodel annotate predictions"}, "images": images,
                       "categories": categories, "annotations": annotations}).encode()


def track_summary(rows: list[dict]) -> list[dict]:
    """Per track of a video block: first and last frame, frames seen and the majority label."""
    tracks: dict[int, list[dict]] = {}
    for row in rows:
        if row["status"] == STATUS_OK and _given(row.get("track")):
            tracks.setdefault(int(row["track"]), []).append(row)
    return [{"track": track, "first_frame": min(int(r["frame"]) for r in seen),
             "last_frame": max(int(r["frame"]) for r in seen), "frames": len(seen),
             "label": Counter(r["label"] for r in seen).most_common(1)[0][0]}
            for track, seen in sorted(tracks.items())]


def image_record(rows: list[dict]) -> dict:
    """The JSON record of one report block (an image or a video)."""
    first = rows[0]
    record = {"path": original_path(first["path"]), "status": first["status"],
              "kind": "video" if is_video_block(rows) else "image"}
    if "\\" in record["path"]:  # an escaped name (`report_path_text`): its bytes, as they are on disk
        record["path_hex"] = path_bytes(first["path"]).hex()
    if first["status"] == STATUS_ERROR:
        return {**record, "message": first["message"]}
    record.update(width=int(first["width"]), height=int(first["height"]), detector=first["detector"],
                  model=first["model"], output=original_path(first["output"]) if _given(first.get("output")) else None)
    faces = []
    for row in rows if first["status"] == STATUS_OK else []:
        face = {"face": int(row["face"]), "box": [float(v) for v in box(row)], "score": float(row["score"]),
                "label": row["label"], "probabilities": probabilities(row)}
        if _given(row.get("frame")):
            face.update(frame=int(row["frame"]), time_s=float(row["time_s"]),
                        track=int(row["track"]) if _given(row.get("track")) else None)
        faces.append(face)
    record["faces"] = faces
    if record["kind"] == "video":
        record["tracks"] = track_summary(rows)
    return record


def jsonl(blocks: list[list[dict]]) -> bytes:
    """`results.jsonl`: one record per report block."""
    return "".join(json.dumps(image_record(rows), ensure_ascii=False) + "\n" for rows in blocks).encode()


class ExportWriter:
    """Writes the chosen exports into the output folder, through its safe writer.

    In a local folder every name is first recorded in the run state (so `--overwrite` removes it). A
    name held by a file that maskmodel did not write or by an annotated copy is never replaced, a label file name that two
    inputs share (`a.jpg`, `a.png`: YOLO and VOC go by the stem) is written for the first one in the
    report only, and a name with a symlink or file in the way is skipped: each is listed in `refused`
    with the reason.
    """

    def __init__(self, folder: LocalFolder | RemoteFolder, state: RunState | None, classes: list[str],
                 formats: tuple[str, ...], save_json: bool, copies: set[str] = frozenset()) -> None:
        self.folder, self.state, self.classes = folder, state, list(classes)
        self.copies = copies  # annotated-copy names of the run's inputs: never an export's
        self.formats, self.save_json = formats, save_json
        self.owned: set[str] = state.ours() if state else set()
        self.refused: list[str] = []
        self._source: dict[str, str] = {}  # label file name -> the report path it was written for

    @property
    def active(self) -> bool:
        return bool(self.formats or self.save_json)

    def claim(self, names: list[str]) -> None:
        """Record `names` as maskmodel's before any is written (those taken by other files are refused)."""
        new = []
        for name in dict.fromkeys(names):
            if not is_safe_relative(name) or name.split("/")[0] == STATE_FOLDER:
                self._refuse(name, "not a relative path inside the output folder")
                continue
            if name in self.copies:
                self._refuse(name, "the annotated copy of an input has this name")
                continue
            if self.state is not None and in_another_run(self.folder.root, name):
                self._refuse(name, f"inside another run's output folder (a folder holding {STATE_FOLDER}/)")
                continue
            if self.state is None:
                self.owned.add(name)
                continue
            if name in self.owned:
                continue
            if os.path.lexists(self.folder.root / name):
                self._refuse(name, "a file that maskmodel did not write has this name")
                continue
            new.append(name)
        if self.state is not None:
            self.state.record(new)
            self.owned.update(new)

    def _refuse(self, name: str, reason: str) -> None:
        entry = f"{name}: {reason}"
        if entry not in self.refused:
            self.refused.append(entry)

    def write(self, name: str, data: bytes, source: str | None = None) -> None:
        """Write one file, if it is maskmodel's (and, for a label file, `source`'s: the first input in
        the report to have that name). Write errors that every file would hit are raised."""
        if name not in self.owned or name in self.copies:
            return
        if source is not None and self._source.setdefault(name, source) != source:
            self._refuse(name, f"also the label file of {self._source[name]} (same folder and stem)")
            return
        try:
            self.folder.write_bytes(name, data)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EISDIR):
                raise
            self._refuse(name, f"cannot write it: {error.strerror} (a symlink, file or folder in the way)")

    def image(self, rows: list[dict], crops: list[tuple[str, bytes]] = ()) -> None:
        """The per-image files of one newly reported image, and its face crops (name, JPEG bytes)."""
        if crops:
            self.claim([name for name, _ in crops])
        for name, data in per_image_files(rows, self.classes, self.formats).items():
            self.write(name, data, rows[0]["path"])
        for name, data in crops:
            self.write(name, data)

    def finish(self, blocks: list[list[dict]], resumed: bool) -> None:
        """The run-level files from the whole report; after `--resume`, also the per-image files of the
        images reported by earlier runs."""
        classes = self.classes + sorted({r["label"] for rows in blocks for r in rows if r.get("label")}
                                        - set(self.classes))
        if resumed and self.formats:
            self._source.clear()
            files = [(name, data, rows[0]["path"]) for rows in blocks
                     for name, data in per_image_files(rows, classes, self.formats).items()]
            self.claim([name for name, _, _ in files])
            for name, data, source in files:
                self.write(name, data, source)
        self.claim(run_names(self.formats, self.save_json))
        if "yolo" in self.formats:
            self.write(CLASSES_NAME, "".join(f"{name}\n" for name in classes).encode())
        if "coco" in self.formats:
            self.write(COCO_NAME, coco_json(blocks, classes))
        if self.save_json:
            self.write(JSONL_NAME, jsonl(blocks))
