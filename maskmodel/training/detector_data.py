"""Face boxes as detector training data: reading VOC, YOLO and COCO sets strictly, the original detector's
unlabelled faces, and the augmentation that makes small faces.

Reading is strict (`read_face_boxes`): a bad record, a box with no area or wholly outside its image, a
missing image or a set without a box is a `DatasetError` naming the file (one line, exit 2 at the CLI).

Crowd datasets label non-exhaustively: small background faces are often left unboxed. A face the
original CenterFace finds with confidence where no label is (`unlabelled_faces`) is therefore no
negative: the training either ignores it (`"ignore"`: no heat loss under it) or teaches the original's
score there (`"teacher"`: a Gaussian of the original's score, which the focal loss treats as a soft
negative at most).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskmodel.classify.crops import resize_image
from maskmodel.evaluation.annotations import AnnotatedImage, DatasetError, read_coco_json, read_voc_folder, read_yolo_folder
from maskmodel.io.imageio import ImageReadError, read_image

UNLABELLED_SCORE = 0.5  # the original's score above which an unlabelled face is taken as a face
COVERED = 0.3  # a detection overlapping a label by this much of its own area is that label's face
SCALE_RANGE = (0.3, 1.6)  # photo rescaling of the augmentation (log-uniform): crowd-dev faces run 6-60 px
FACE_CENTRED = 0.7  # share of crops centred on a face (the rest anywhere in the photo)


@dataclass(frozen=True)
class TrainingPhoto:
    """A photo with its face boxes and the boxes not to learn from (`(N, 4)` x1, y1, x2, y2 each)."""

    path: Path
    boxes: np.ndarray
    ignore: np.ndarray
    scores: np.ndarray  # the original detector's score of each ignore box


def dataset_format(data: Path) -> str:
    """`"coco"` for a `.json` file, `"voc"` for a folder with `annotations/`, `"yolo"` for one with `labels/`."""
    data = Path(data)
    if data.is_file() and data.suffix.lower() == ".json":
        return "coco"
    if (data / "annotations").is_dir():
        return "voc"
    if (data / "labels").is_dir():
        return "yolo"
    raise DatasetError(f"{data} is not a face-box dataset: expected a VOC folder (annotations/*.xml, images/), a YOLO "
                       "folder (images/, labels/*.txt, classes.txt) or a COCO .json file")


def read_face_boxes(data: Path) -> list[AnnotatedImage]:
    """Every annotated photo of `data` (VOC, YOLO or COCO, see `dataset_format`), read strictly.

    Raises:
        DatasetError: a record that cannot be used, a box with no area or wholly outside its image, a
            missing image, a class index outside the class list, or no box at all (the message names it).
    """
    data = Path(data)
    kind = dataset_format(data)
    if kind == "voc":
        images = read_voc_folder(data)
    elif kind == "yolo":
        names_file = next((data / n for n in ("classes.txt", "obj.names") if (data / n).is_file()), None)
        if names_file is None:
            raise DatasetError(f"{data} has no classes.txt (or obj.names): the class names of labels/*.txt")
        names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        images = read_yolo_folder(data / "images", data / "labels", names)
    else:
        images = read_coco_json(data)
    for image in images:
        if image.outside:
            raise DatasetError(f"{image.image_path}: {image.outside} box(es) lie wholly outside the image")
    return images


def unlabelled_faces(images: list[AnnotatedImage], detector, progress=None) -> dict[str, list[list[float]]]:
    """For each photo (by path), the faces `detector` finds with score >= `UNLABELLED_SCORE` that no label
    covers: `[x1, y1, x2, y2, score]` each."""
    found = {}
    for image in images:
        try:
            detections = detector.detect(read_image(image.image_path))
        except ImageReadError as error:
            raise DatasetError(f"{image.image_path}: {error}") from None
        labels = np.array([face.box for face in image.faces], np.float32).reshape(-1, 4)
        kept = []
        for box in detections[detections[:, 4] >= UNLABELLED_SCORE]:
            area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
            width = np.clip(np.minimum(labels[:, 2], box[2]) - np.maximum(labels[:, 0], box[0]), 0, None)
            height = np.clip(np.minimum(labels[:, 3], box[3]) - np.maximum(labels[:, 1], box[1]), 0, None)
            if not len(labels) or (width * height / area).max() < COVERED:
                kept.append([round(float(v), 2) for v in box[:5]])
        found[str(image.image_path)] = kept
        if progress:
            progress()
    return found


def training_photos(images: list[AnnotatedImage], unlabelled: dict[str, list[list[float]]]) -> list[TrainingPhoto]:
    """The photos as training records: label boxes, and the unlabelled faces as ignore boxes."""
    photos = []
    for image in images:
        extra = np.array(unlabelled.get(str(image.image_path), []), np.float32).reshape(-1, 5)
        photos.append(TrainingPhoto(image.image_path, np.array([f.box for f in image.faces], np.float32).reshape(-1, 4),
                                    extra[:, :4], extra[:, 4]))
    return photos


def _colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation jitter; now and then a blur or a low-resolution round trip."""
    pixels = image.astype(np.float32)
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + (pixels - grey) * rng.uniform(0.6, 1.4)  # saturation
    pixels = (pixels - pixels.mean()) * rng.uniform(0.7, 1.3) + pixels.mean() + rng.uniform(-30, 30)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    roll = rng.random()
    if roll < 0.15:
        pixels = cv2.GaussianBlur(pixels, (0, 0), rng.uniform(0.5, 1.5))
    elif roll < 0.3:
        height, width = pixels.shape[:2]
        factor = rng.uniform(0.4, 0.8)
        small = resize_image(pixels, (max(1, round(width * factor)), max(1, round(height * factor))))
        pixels = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return pixels


def augmented_crop(photo: TrainingPhoto, size: int, rng: np.random.Generator, mode: str = "ignore"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A `size` x `size` training crop of `photo`: rescaled (log-uniform in `SCALE_RANGE`, the photo's longer
    side at least `size`), cropped at a
    face or anywhere, mirrored half the time, colour-jittered; pixels outside the photo are zero.

    Returns:
        RGB float32 pixels, face boxes, ignore boxes (faces cut by the crop edge among them) and the
        soft scores of `mode="teacher"` boxes (`(N, 5)` box + score; empty with `"ignore"`), in crop pixels.
    """
    image = read_image(photo.path)
    height, width = image.shape[:2]
    low = min(max(SCALE_RANGE[0], size / max(height, width)), SCALE_RANGE[1])  # the photo at least spans the crop
    scale = float(np.exp(rng.uniform(np.log(low), np.log(SCALE_RANGE[1]))))
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = resize_image(image, new_size)
    boxes, ignore = photo.boxes * scale, photo.ignore * scale
    if len(boxes) and rng.random() < FACE_CENTRED:
        x1, y1, x2, y2 = boxes[rng.integers(len(boxes))]
        cx, cy = (x1 + x2) / 2 + rng.uniform(-0.4, 0.4) * size, (y1 + y2) / 2 + rng.uniform(-0.4, 0.4) * size
    else:
        cx, cy = rng.uniform(0, new_size[0]), rng.uniform(0, new_size[1])
    left, top = int(round(cx - size / 2)), int(round(cy - size / 2))
    left = int(np.clip(left, min(0, new_size[0] - size), max(0, new_size[0] - size)))
    top = int(np.clip(top, min(0, new_size[1] - size), max(0, new_size[1] - size)))
    crop = np.zeros((size, size, 3), np.uint8)
    sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(left + size, new_size[0]), min(top + size, new_size[1])
    crop[sy1 - top:sy2 - top, sx1 - left:sx2 - left] = image[sy1:sy2, sx1:sx2]
    shift = np.array([left, top, left, top], np.float32)
    boxes, cut = _inside_crop(boxes - shift, size)
    ignore, _ = _inside_crop(ignore - shift, size, keep_cut=True)
    soft = np.zeros((0, 5), np.float32)
    if mode == "teacher":
        shifted = photo.ignore * scale - shift
        kept = _visible(shifted, size)
        soft = np.column_stack([np.clip(shifted[kept], 0, size), photo.scores[kept]]).astype(np.float32)
        ignore = np.zeros((0, 4), np.float32)
    ignore = np.concatenate([ignore, cut])
    crop = _colour(crop, rng)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        boxes, ignore = _mirror(boxes, size), _mirror(ignore, size)
        soft[:, :4] = _mirror(soft[:, :4], size)
    return np.ascontiguousarray(crop[..., ::-1], np.float32), boxes, ignore, soft


def _visible(boxes: np.ndarray, size: int) -> np.ndarray:
    """Which boxes keep at least half their area inside a `size` x `size` crop."""
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    clipped = np.clip(boxes, 0, size)
    inside = np.maximum(clipped[:, 2] - clipped[:, 0], 0) * np.maximum(clipped[:, 3] - clipped[:, 1], 0)
    return inside / area >= 0.5


def _inside_crop(boxes: np.ndarray, size: int, keep_cut: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Boxes at least half inside the crop (clipped), and the others that still touch it (clipped: ignored)."""
    boxes = boxes.reshape(-1, 4)
    visible = _visible(boxes, size)
    clipped = np.clip(boxes, 0, size)
    touching = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    if keep_cut:
        return clipped[touching], np.zeros((0, 4), np.float32)
    return clipped[visible], clipped[touching & ~visible]


def _mirror(boxes: np.ndarray, size: int) -> np.ndarray:
    mirrored = boxes.copy()
    mirrored[:, [0, 2]] = size - boxes[:, [2, 0]]
    return mirrored
