"""Folder-per-class datasets: scanning, duplicate-aware splits and the detector-aligned crop cache.

Layouts accepted per root: ``ROOT/<class>/*`` (no split given) or ``ROOT/{train,val,test}/<class>/*``.
Exact duplicates (same bytes) and near duplicates (64-bit difference hash within a few bits) are grouped,
and a group never straddles two splits. Groups with a given split keep it; the others are split by a
seeded hash of the group.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from maskmodel.classify.crops import CropPolicy, crop_face
from maskmodel.detect.faces import largest_face
from maskmodel.io.imageio import ImageReadError, encode_image, read_image
from maskmodel.runtime.files import write_file_atomic

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLITS = ("train", "val", "test")
NEAR_DUPLICATE_BITS = 4


@dataclass
class Sample:
    """One image of a dataset: where it is, its class and (once known) its split."""

    path: Path
    label: str
    split: str | None = None
    sha256: str = ""
    dhash: int = 0
    group: int = -1


@dataclass
class DatasetReport:
    """What scanning found: counts, duplicates, unreadable files and faces not found.

    `mixed_label_groups` counts near-duplicate groups whose members have different classes (for example
    a photo and the same photo with a mask pasted on); they are kept, all in one split.
    """

    roots: list[str]
    classes: list[str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    exact_duplicates: int = 0
    near_duplicates: int = 0
    label_conflicts: list[str] = field(default_factory=list)  # same bytes, different class
    unreadable: dict[str, str] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    mixed_label_groups: int = 0
    faces_not_found: int = 0
    faces_found: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def class_folders(root: Path) -> set[str]:
    """Class names of a dataset root: its sub-folders, or those of its train/val/test folders."""
    bases = [Path(root) / s for s in SPLITS if (Path(root) / s).is_dir()] or [Path(root)]
    return {p.name for base in bases for p in base.iterdir() if p.is_dir()}


def scan_folder(root: Path) -> list[Sample]:
    """List the images of one dataset root, with their class and (if the layout gives it) split."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Expected a dataset directory. Received: {str(root)!r}")
    split_dirs = [root / split for split in SPLITS if (root / split).is_dir()]
    sources = [(d, d.name) for d in split_dirs] if split_dirs else [(root, None)]
    samples = []
    for base, split in sources:
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for path in sorted(class_dir.rglob("*")):
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                    samples.append(Sample(path=path, label=class_dir.name, split=split))
    return samples


def difference_hash(image: np.ndarray) -> int:
    """64-bit perceptual difference hash (dHash) of a BGR image."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def group_duplicates(samples: list[Sample]) -> tuple[int, int]:
    """Union exact and near duplicates into groups (sets `Sample.group`); returns both counts."""
    parent = list(range(len(samples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> bool:
        a, b = find(i), find(j)
        if a == b:
            return False
        parent[max(a, b)] = min(a, b)
        return True

    exact = 0
    first_by_sha: dict[str, int] = {}
    for index, sample in enumerate(samples):
        if sample.sha256 in first_by_sha:
            exact += union(first_by_sha[sample.sha256], index)
        else:
            first_by_sha[sample.sha256] = index
    hashes = np.array([s.dhash for s in samples], dtype=np.uint64)
    near = 0
    for start in range(0, len(samples), 256):
        block = hashes[start : start + 256, None] ^ hashes[None, :]
        distance = np.unpackbits(block.view(np.uint8), axis=-1).reshape(block.shape + (64,)).sum(-1)
        for i, j in zip(*np.nonzero(distance <= NEAR_DUPLICATE_BITS)):
            i += start
            if i < j and samples[i].sha256 != samples[j].sha256:
                near += union(int(i), int(j))
    for index, sample in enumerate(samples):
        sample.group = find(index)
    return exact, near


def assign_splits(samples: list[Sample], fractions: tuple[float, float, float], seed: int) -> None:
    """Give every group one split: the strictest given split of a member, else a seeded draw."""
    priority = {"test": 0, "val": 1, "train": 2}
    given: dict[int, str] = {}
    for sample in samples:
        if sample.split is not None:
            current = given.get(sample.group)
            if current is None or priority[sample.split] < priority[current]:
                given[sample.group] = sample.split
    group_key: dict[int, str] = {}
    for sample in samples:
        group_key[sample.group] = min(group_key.get(sample.group, sample.sha256), sample.sha256)
    cut_train, cut_val = fractions[0], fractions[0] + fractions[1]
    for sample in samples:
        if sample.group in given:
            sample.split = given[sample.group]
        else:
            draw = random.Random(f"{seed}:{group_key[sample.group]}").random()
            sample.split = "train" if draw < cut_train else "val" if draw < cut_val else "test"


def load_dataset(
    roots: list[Path],
    exclude: set[str] = frozenset(),
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> tuple[list[Sample], DatasetReport]:
    """Scan `roots`, hash every image, group duplicates and assign duplicate-safe splits.

    Args:
        roots: dataset directories (folder-per-class, with or without train/val/test).
        exclude: file names to leave out (for example images that also appear in an evaluation set).
        fractions: train/val/test shares for images without a given split. Defaults to 80/10/10.
        seed: seed of the split draw.

    Returns:
        The readable samples, one per distinct file content (exact duplicates keep their first copy),
        and the dataset report.
    """
    found = [s for root in roots for s in scan_folder(Path(root))]
    classes = sorted(set().union(*(class_folders(Path(root)) for root in roots)))
    report = DatasetReport(roots=[str(r) for r in roots], classes=classes)
    samples = []
    for sample in found:
        if sample.path.name in exclude:
            report.excluded.append(str(sample.path))
            continue
        try:
            image = read_image(sample.path)
        except ImageReadError as error:
            report.unreadable[str(sample.path)] = str(error)
            continue
        sample.sha256 = hashlib.sha256(sample.path.read_bytes()).hexdigest()
        sample.dhash = difference_hash(image)
        samples.append(sample)
    report.exact_duplicates, report.near_duplicates = group_duplicates(samples)
    assign_splits(samples, fractions, seed)
    labels_by_content: dict[str, set[str]] = {}
    labels_by_group: dict[int, set[str]] = {}
    for sample in samples:
        labels_by_content.setdefault(sample.sha256, set()).add(sample.label)
        labels_by_group.setdefault(sample.group, set()).add(sample.label)
    conflicting = {sha for sha, labels in labels_by_content.items() if len(labels) > 1}
    report.label_conflicts = [str(s.path) for s in samples if s.sha256 in conflicting]
    report.mixed_label_groups = sum(len(labels) > 1 for labels in labels_by_group.values())
    seen: set[str] = set()
    kept = []
    for sample in samples:
        if sample.sha256 in conflicting or sample.sha256 in seen:
            continue
        seen.add(sample.sha256)
        kept.append(sample)
    report.counts = {
        split: dict(Counter(s.label for s in kept if s.split == split)) for split in SPLITS
    }
    return kept, report


@dataclass
class CropSet:
    """Context crops (RGB, uint8, square) of one split with their integer labels."""

    crops: np.ndarray
    labels: np.ndarray
    paths: list[str]


CONTEXT_MARGIN = 0.5
CONTEXT_SIZE = 320


def detector_crop(image: np.ndarray, detector) -> tuple[np.ndarray, bool]:
    """Context crop of the largest face `detector` finds, or of the whole image if none is found.

    The crop uses the runtime's crop function with a wider margin (`CONTEXT_MARGIN`), so that
    augmentation can cut the runtime crop (and jittered versions of it) out of it.
    """
    box, found = largest_face(detector.detect(image), image)
    crop = crop_face(image, box, CropPolicy(margin=CONTEXT_MARGIN, square=True), CONTEXT_SIZE)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), found


def build_crop_sets(
    samples: list[Sample],
    classes: list[str],
    detector,
    cache_dir: Path,
    report: DatasetReport,
    progress: bool = True,
) -> dict[str, CropSet]:
    """Detector-aligned context crops per split, cached on disk by image content.

    The cache key is the image's sha256 plus the detector's settings, so a second run (or another
    run over overlapping data) detects nothing twice.
    """
    from tqdm import tqdm

    settings = f"{detector.name}-{getattr(detector, 'scales', '')}-{CONTEXT_MARGIN}-{CONTEXT_SIZE}"
    key = hashlib.sha256(settings.encode()).hexdigest()[:12]
    cache_dir = Path(cache_dir) / f"crops-{key}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    crops: dict[str, list] = {split: [] for split in SPLITS}
    for sample in tqdm(samples, desc="face crops", disable=None if progress else True, unit="img"):
        cached = cache_dir / f"{sample.sha256}.png"
        marker = cache_dir / f"{sample.sha256}.noface"
        crop = _cached_crop(cached)
        if crop is not None:
            found = not marker.exists()
        else:  # not cached, or a damaged file from a killed run of an older version: made again
            crop, found = detector_crop(read_image(sample.path), detector)
            if not found:
                marker.touch()
            write_file_atomic(cached, encode_image(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), ".png"))
        report.faces_found += found
        report.faces_not_found += not found
        crops[sample.split].append((crop, classes.index(sample.label), str(sample.path)))
    result = {}
    for split, rows in crops.items():
        if rows:
            images, labels, paths = zip(*rows)
            result[split] = CropSet(np.stack(images), np.array(labels, dtype=np.int64), list(paths))
    return result


def _cached_crop(path: Path) -> np.ndarray | None:
    """A crop of the cache (RGB), or `None` when it is missing or damaged (cache files are written whole,
    by a rename, but a folder may hold files of older versions)."""
    if not path.exists():
        return None
    try:
        crop = read_image(path)
    except ImageReadError:
        return None
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) if crop.shape == (CONTEXT_SIZE, CONTEXT_SIZE, 3) else None
