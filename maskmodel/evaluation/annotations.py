"""Face-box annotations: PASCAL VOC XML and YOLO txt readers.

Reading policy: a dataset that cannot be read at all (no `annotations/` or `images/` folder, no
annotation files, no annotated face) is a `DatasetError` naming the path. A single bad record (XML that
does not parse, a missing `<filename>` or `<name>`, a box that is not four numbers with x1 < x2 and
y1 < y2, a YOLO line that is not `class cx cy w h` with a class index in range and a positive size, a
label file that is not text, an image that is missing or cannot be read) leaves that image out of the
evaluation: with a `skipped` list, it is named there with the reason and reading goes on; without one,
it is a `DatasetError`. Only regular files of at most `MAX_ANNOTATION_BYTES` are read (a FIFO is a bad
record, never a hang); boxes are clipped to the image and counted (`AnnotatedImage.clipped`).
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from maskmodel.errors import UsageError
from maskmodel.io.imagesize import declared_size, exif_orientation
from maskmodel.runtime.files import read_regular_file, regular_file_handle


class DatasetError(UsageError):
    """An annotated dataset cannot be read; the message names the file or folder."""


class _BadRecord(Exception):
    """One annotation record cannot be used (the reason is the message)."""


@dataclass(frozen=True)
class AnnotatedFace:
    """One annotated face box with its label."""

    box: tuple[float, float, float, float]
    label: str


@dataclass(frozen=True)
class AnnotatedImage:
    """An image file and its annotated faces; `clipped`: boxes that reached outside the image, clipped to
    it (or left out when nothing of them was inside); `outside`: how many of those were left out; `turned`: a
    VOC file without `<size>` whose image its EXIF orientation turns (boxes read against the turned image)."""

    image_path: Path
    faces: tuple[AnnotatedFace, ...]
    clipped: int = 0
    outside: int = 0
    turned: bool = False


MAX_ANNOTATION_BYTES = 16 << 20  # a label or annotation file larger than this is refused, not read


def _read_record(path: Path) -> bytes:
    """The bytes of an annotation or label file: a regular file, at most `MAX_ANNOTATION_BYTES`."""
    try:
        return read_regular_file(path, MAX_ANNOTATION_BYTES)
    except OSError as error:
        raise _BadRecord(str(error)) from None


def _clipped(faces: list[AnnotatedFace], width: float, height: float) -> tuple[list[AnnotatedFace], int, int]:
    """`faces` with their boxes clipped to a `width` x `height` image (those wholly outside left out), how
    many boxes were changed or left out, and how many were left out."""
    kept, changed = [], 0
    for face in faces:
        x1, y1, x2, y2 = face.box
        box = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
        changed += box != face.box
        if box[2] > box[0] and box[3] > box[1]:
            kept.append(AnnotatedFace(box, face.label))
    return kept, changed, len(faces) - len(kept)


def _image_size(root, image_path: Path) -> tuple[float, float, bool] | None:
    """(width, height, turned) from a VOC `<size>`, else the size the image decodes to: its header's, turned by
    its EXIF orientation (a phone's portrait JPEG is stored landscape; `turned` then); `None` if neither tells."""
    try:
        width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
        if width > 0 and height > 0:
            return float(width), float(height), False
    except (TypeError, ValueError):
        pass
    try:
        handle = regular_file_handle(image_path)
    except OSError:
        return None
    with os.fdopen(handle, "rb") as stream:
        head = stream.read(1 << 20)
    size = declared_size(head)
    if size is None:
        return None
    turned = exif_orientation(head) >= 5
    height, width = size[::-1] if turned else size
    return float(width), float(height), turned


def _inside(images_dir: Path, file_name: str) -> Path:
    """The image a `<filename>` names, inside `images_dir`: an absolute name or one with `..` (written by
    some tools) is taken by its last part."""
    parts = file_name.replace("\\", "/").split("/")
    if file_name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
        return images_dir / parts[-1]
    return images_dir / file_name


def read_voc(annotation_path: Path, images_dir: Path) -> AnnotatedImage:
    """Read one PASCAL VOC XML file; the image is `images_dir / <filename>`. Raises `DatasetError`."""
    try:
        return _read_voc(Path(annotation_path), Path(images_dir))
    except _BadRecord as error:
        raise DatasetError(f"{annotation_path}: {error}") from None


def _read_voc(annotation_path: Path, images_dir: Path) -> AnnotatedImage:
    try:
        root = ElementTree.fromstring(_read_record(annotation_path))
    except (ElementTree.ParseError, UnicodeDecodeError) as error:
        raise _BadRecord(f"not valid XML ({error})") from None
    file_name = (root.findtext("filename") or "").strip()
    if not file_name:
        raise _BadRecord("no <filename>")
    faces = []
    for index, obj in enumerate(root.findall("object")):
        label = (obj.findtext("name") or "").strip()
        if not label:
            raise _BadRecord(f"object {index} has no <name>")
        try:
            box = tuple(float(obj.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise _BadRecord(f"object {index} has no numeric <bndbox> xmin, ymin, xmax, ymax") from None
        faces.append(AnnotatedFace(_checked_box(box, index), label))
    image_path = _inside(images_dir, file_name)
    if not image_path.is_file():
        raise _BadRecord(f"its image {image_path} does not exist")
    size = _image_size(root, image_path)
    if size is None:
        raise _BadRecord(f"the size of its image {image_path} is neither in <size> nor in the image's header")
    faces, clipped, outside = _clipped(faces, *size[:2])
    return AnnotatedImage(image_path, tuple(faces), clipped, outside, size[2])


def _checked_box(box: tuple[float, ...], index: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in box) or x2 <= x1 or y2 <= y1:
        raise _BadRecord(f"object {index} has an empty or inverted box {box}")
    return x1, y1, x2, y2


def read_voc_folder(dataset: Path, exclude: frozenset[str] = frozenset(),
                    skipped: list[tuple[str, str]] | None = None, images_dir: Path | None = None
                    ) -> list[AnnotatedImage]:
    """Read `dataset/annotations/**/*.xml` (images in `images_dir`, by default `dataset/images/`), leaving
    out `exclude` names.

    Bad records are listed in `skipped` as (file, reason) when it is given, else raise `DatasetError`.
    """
    dataset = Path(dataset)
    folder = dataset / "annotations"
    if not folder.is_dir():
        raise DatasetError(f"{folder} not found: a VOC dataset has annotations/*.xml and images/")
    files = sorted(folder.rglob("*.xml"))
    if not files:
        raise DatasetError(f"{folder} holds no .xml annotation files")
    images = []
    for path in files:
        try:
            image = _read_voc(path, Path(images_dir) if images_dir else dataset / "images")
        except _BadRecord as error:
            if skipped is None:
                raise DatasetError(f"{path}: {error}") from None
            skipped.append((str(path), str(error)))
            continue
        if image.image_path.name not in exclude:
            images.append(image)
    return _with_faces(images, dataset)


def read_yolo_folder(images_dir: Path, labels_dir: Path, names: list[str],
                     skipped: list[tuple[str, str]] | None = None) -> list[AnnotatedImage]:
    """Read YOLO txt labels (`class cx cy w h`, relative) for every image in `images_dir`.

    Args:
        images_dir: folder of images.
        labels_dir: folder of `<image stem>.txt` files (an image without one has no faces).
        names: class names by class index (the lines of a `classes.txt` / `obj.names` file).
        skipped: where to list bad records as (file, reason); without it they raise `DatasetError`.
    """
    from maskmodel.io.crawl import iter_inputs
    from maskmodel.io.imageio import ImageReadError, read_image

    for folder in (images_dir, labels_dir):
        if not Path(folder).is_dir():
            raise DatasetError(f"{folder} not found: a YOLO dataset has images/ and labels/")
    images = []
    for item in iter_inputs([Path(images_dir)]):
        label_file = Path(labels_dir) / (Path(item.relative).with_suffix(".txt"))
        try:
            try:
                height, width = read_image(item.path).shape[:2]
            except ImageReadError as error:
                raise _BadRecord(f"image {item.path}: {error}") from None
            faces = _read_yolo_labels(label_file, names, width, height) if os.path.lexists(label_file) else []
        except _BadRecord as error:
            if skipped is None:
                raise DatasetError(f"{label_file}: {error}") from None
            skipped.append((str(label_file), str(error)))
            continue
        faces, clipped, outside = _clipped(faces, width, height)
        images.append(AnnotatedImage(item.path, tuple(faces), clipped, outside))
    return _with_faces(images, Path(images_dir))


def _read_yolo_labels(label_file: Path, names: list[str], width: int, height: int) -> list[AnnotatedFace]:
    try:
        text = _read_record(label_file).decode("utf-8-sig")  # a byte order mark, as some editors write, is fine
    except UnicodeDecodeError:
        raise _BadRecord("not a text file") from None
    faces = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            index, cx, cy, w, h = int(fields[0]), *(float(v) for v in fields[1:5])
        except (ValueError, IndexError):
            raise _BadRecord(f"line {number} is not 'class cx cy w h': {line[:60]!r}") from None
        if not 0 <= index < len(names):
            raise _BadRecord(f"line {number}: class {index} is not in 0..{len(names) - 1}")
        cx, cy, w, h = cx * width, cy * height, w * width, h * height
        faces.append(AnnotatedFace(_checked_box((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), number - 1),
                                   names[index]))
    return faces


def read_coco_json(annotation_file: Path, images_dir: Path | None = None) -> list[AnnotatedImage]:
    """Read a COCO detection file: `images` (id, file_name, width, height), `annotations` (image_id, bbox
    `[x, y, w, h]`, category_id) and `categories` (id, name). Images are looked up in `images_dir` (default:
    the file's folder, or its `images/` subfolder where that holds them). Raises `DatasetError` naming the
    first bad record."""
    annotation_file = Path(annotation_file)
    try:
        record = json.loads(_read_record(annotation_file).decode("utf-8"))
        names = {int(c["id"]): str(c["name"]) for c in record.get("categories", [])}
        images = {int(i["id"]): i for i in record["images"]}
        boxes: dict[int, list[AnnotatedFace]] = {key: [] for key in images}
        for index, item in enumerate(record.get("annotations", [])):
            if int(item["image_id"]) not in images:
                raise _BadRecord(f"annotation {index} names image id {item['image_id']}, which is not in 'images'")
            if int(item["category_id"]) not in names:
                raise _BadRecord(f"annotation {index} has category {item['category_id']}, which is not in 'categories'")
            x, y, w, h = (float(v) for v in item["bbox"])
            boxes[int(item["image_id"])].append(
                AnnotatedFace(_checked_box((x, y, x + w, y + h), index), names[int(item["category_id"])]))
    except (_BadRecord, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        reason = error if isinstance(error, (_BadRecord, ValueError)) else f"missing or malformed {error}"
        raise DatasetError(f"{annotation_file}: {reason}") from None
    folder = Path(images_dir) if images_dir else annotation_file.parent
    if images_dir is None and (folder / "images").is_dir():
        folder = folder / "images"
    result = []
    for key, image in images.items():
        path = _inside(folder, str(image.get("file_name", "")))
        if not path.is_file():
            raise DatasetError(f"{annotation_file}: its image {path} does not exist")
        try:
            width, height = float(image["width"]), float(image["height"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{annotation_file}: image {key} has no numeric width and height") from None
        faces, clipped, outside = _clipped(boxes[key], width, height)
        result.append(AnnotatedImage(path, tuple(faces), clipped, outside))
    return _with_faces(result, annotation_file)


def _with_faces(images: list[AnnotatedImage], dataset: Path) -> list[AnnotatedImage]:
    if not any(image.faces for image in images):
        raise DatasetError(f"{dataset} has no readable annotated face")
    return images


def relabel(images: list[AnnotatedImage], mapping: dict[str, str]) -> list[AnnotatedImage]:
    """Rename face labels by `mapping` (labels not in it are kept)."""
    return [
        AnnotatedImage(image.image_path, tuple(AnnotatedFace(f.box, mapping.get(f.label, f.label)) for f in image.faces),
                       image.clipped, image.outside, image.turned)
        for image in images
    ]


# Names that annotated sets give to a mask worn below the nose or on the chin.
CANONICAL_LABELS = {"with_incorrect_mask": "mask_incorrect", "mask_weared_incorrect": "mask_incorrect"}


def canonical_labels(images: list[AnnotatedImage]) -> list[AnnotatedImage]:
    """`relabel` by `CANONICAL_LABELS`: every set's incorrectly-worn mask becomes `mask_incorrect`."""
    return relabel(images, CANONICAL_LABELS)
