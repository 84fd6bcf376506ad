"""Photo sets with face boxes (PASCAL VOC) as training data, cut the way the runtime cuts faces.

Each photo is run through the runtime's face detector; every annotated face takes the label from its
annotation and the box from the detector (the best unmatched detection with IoU >= `MATCH_IOU`), or its
annotated box where the detector missed it. The box becomes a context crop through the one crop
function, exactly as `data.detector_crop` does for one-face images, so the same augmentation applies.

Photos, not faces, are split: exact and near-duplicate photos are grouped (`data.group_duplicates`)
and each group is drawn into train/val/test by a seeded hash, so the split is deterministic.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskmodel.evaluation.annotations import AnnotatedImage, canonical_labels, read_voc_folder
from maskmodel.classify.crops import CropPolicy, crop_face
from maskmodel.evaluation.evaluate import match_detections
from maskmodel.io.imageio import read_image
from maskmodel.training.data import (
    CONTEXT_MARGIN, CONTEXT_SIZE, SPLITS, CropSet, Sample, assign_splits, group_duplicates, difference_hash,
)

MATCH_IOU = 0.3


@dataclass(frozen=True)
class SplitPhoto:
    """One annotated photo (labels made canonical) with its content hash and split."""

    annotated: AnnotatedImage
    sha256: str
    split: str


def split_photos(
    root: Path,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    exclude: frozenset[str] = frozenset(),
) -> list[SplitPhoto]:
    """Read a VOC photo set (`root/annotations/*.xml`, `root/images/`) and split it duplicate-aware.

    Args:
        root: the photo set.
        fractions: train/val/test shares of duplicate groups. Defaults to 80/10/10.
        seed: seed of the split draw.
        exclude: photo file names to leave out.

    Returns:
        Every photo with at least one face, in file order; exact duplicates keep their first copy.
    """
    photos = [p for p in canonical_labels(read_voc_folder(Path(root), exclude)) if p.faces]
    samples = []
    for photo in photos:
        data = photo.image_path.read_bytes()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        samples.append(Sample(path=photo.image_path, label="", sha256=hashlib.sha256(data).hexdigest(),
                              dhash=difference_hash(image)))
    group_duplicates(samples)
    assign_splits(samples, fractions, seed)
    seen: set[str] = set()
    result = []
    for photo, sample in zip(photos, samples):
        if sample.sha256 not in seen:
            seen.add(sample.sha256)
            result.append(SplitPhoto(photo, sample.sha256, sample.split))
    return result


def face_counts(photos: list[SplitPhoto]) -> dict[str, Counter]:
    """Face labels counted per split."""
    return {split: Counter(f.label for p in photos if p.split == split for f in p.annotated.faces) for split in SPLITS}


def aligned_boxes(annotated: AnnotatedImage, detections: np.ndarray) -> list[tuple[tuple[float, ...], bool]]:
    """Per annotated face, the matched detector box (and True), or the annotated box (and False)."""
    truth = np.array([f.box for f in annotated.faces], dtype=np.float64).reshape(-1, 4)
    _, matched = match_detections(detections[:, :4].astype(np.float64), truth,
                                  np.zeros(len(truth), dtype=bool), MATCH_IOU)
    return [
        (tuple(float(v) for v in detections[m, :4]), True) if m >= 0 else (face.box, False)
        for face, m in zip(annotated.faces, matched)
    ]


def build_photo_crop_sets(
    photos: list[SplitPhoto],
    classes: list[str],
    detector,
    cache_dir: Path,
    progress: bool = True,
) -> tuple[dict[str, CropSet], dict]:
    """Context crops (RGB) of every annotated face of `photos` whose label is one of `classes`, per split,
    cached on disk.

    The cache key is the photo's sha256, its boxes and the detector's settings. Returns the crop sets
    and a summary (faces per split and class, how many boxes came from the detector).
    """
    from tqdm import tqdm

    settings = (f"{detector.name}-{getattr(detector, 'scales', '')}-{getattr(detector, 'score_threshold', '')}"
                f"-{MATCH_IOU}-{CONTEXT_MARGIN}-{CONTEXT_SIZE}")
    cache = Path(cache_dir) / f"photo-crops-{hashlib.sha256(settings.encode()).hexdigest()[:12]}"
    cache.mkdir(parents=True, exist_ok=True)
    policy = CropPolicy(margin=CONTEXT_MARGIN, square=True)
    rows: dict[str, list] = {split: [] for split in SPLITS}
    from_detector = 0
    for photo in tqdm(photos, desc="photo faces", disable=None if progress else True, unit="photo"):
        boxes_key = hashlib.sha256(repr([f.box for f in photo.annotated.faces]).encode()).hexdigest()[:12]
        cached = cache / f"{photo.sha256}-{boxes_key}.npz"
        if cached.exists():
            stored = np.load(cached)
            crops, detected = stored["crops"], stored["detected"]
        else:
            image = read_image(photo.annotated.image_path)
            aligned = aligned_boxes(photo.annotated, detector.detect(image))
            crops = np.stack([cv2.cvtColor(crop_face(image, box, policy, CONTEXT_SIZE), cv2.COLOR_BGR2RGB)
                              for box, _ in aligned])
            detected = np.array([found for _, found in aligned])
            np.savez(cached, crops=crops, detected=detected)
        from_detector += int(detected.sum())
        for index, (face, crop) in enumerate(zip(photo.annotated.faces, crops)):
            if face.label in classes:  # faces of a label left out of training (`TrainConfig.ignore_labels`) are not
                rows[photo.split].append((crop, classes.index(face.label), f"{photo.annotated.image_path}#{index}"))
    sets = {}
    for split, split_rows in rows.items():
        if split_rows:
            images, labels, paths = zip(*split_rows)
            sets[split] = CropSet(np.stack(images), np.array(labels, dtype=np.int64), list(paths))
    total = sum(len(s.labels) for s in sets.values())
    summary = {
        "photos": {split: sum(p.split == split for p in photos) for split in SPLITS},
        "faces": {split: dict(counts) for split, counts in face_counts(photos).items()},
        "boxes_from_detector": from_detector,
        "boxes_from_annotation": total - from_detector,
    }
    return sets, summary
