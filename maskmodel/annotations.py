"""Face-box annotations: PASCAL VOC XML reader."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AnnotatedFace:
    """One annotated face box with its label."""

    box: tuple[float, float, float, float]
    label: str


@dataclass(frozen=True)
class AnnotatedImage:
    """An image file and its annotated faces."""

    image_path: Path
    faces: tuple[AnnotatedFace, ...]


def read_voc(annotation_path: Path, images_dir: Path) -> AnnotatedImage:
    """Read one PASCAL VOC XML file; the image is `images_dir / <filename>`."""
    root = ElementTree.parse(annotation_path).getroot()
    faces = []
    for obj in root.findall("object"):
        box = tuple(float(obj.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax"))
        faces.append(AnnotatedFace(box=box, label=obj.findtext("name").strip()))
    return AnnotatedImage(Path(images_dir) / root.findtext("filename").strip(), tuple(faces))


def read_voc_folder(dataset: Path, exclude: frozenset[str] = frozenset()) -> list[AnnotatedImage]:
    """Read `dataset/annotations/*.xml` (images in `dataset/images/`), leaving out `exclude` names."""
    dataset = Path(dataset)
    images = [read_voc(p, dataset / "images") for p in sorted((dataset / "annotations").glob("*.xml"))]
    return [image for image in images if image.image_path.name not in exclude]


def read_yolo_folder(images_dir: Path, labels_dir: Path, names: list[str]) -> list[AnnotatedImage]:
    """Read YOLO txt labels (`class cx cy w h`, relative) for every image in `images_dir`.

    Args:
        images_dir: folder of images.
        labels_dir: folder of `<image stem>.txt` files (an image without one has no faces).
        names: class names by class index (the lines of a `classes.txt` / `obj.names` file).
    """
    from maskmodel.crawl import iter_inputs
    from maskmodel.imageio import read_image

    images = []
    for item in iter_inputs([Path(images_dir)]):
        height, width = read_image(item.path).shape[:2]
        label_file = Path(labels_dir) / (Path(item.relative).with_suffix(".txt"))
        faces = []
        if label_file.exists():
            for line in label_file.read_text().split("\n"):
                if not line.strip():
                    continue
                index, cx, cy, w, h = line.split()[:5]
                cx, cy, w, h = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
                faces.append(AnnotatedFace((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), names[int(index)]))
        images.append(AnnotatedImage(item.path, tuple(faces)))
    return images


def relabel(images: list[AnnotatedImage], mapping: dict[str, str]) -> list[AnnotatedImage]:
    """Rename face labels by `mapping` (labels not in it are kept)."""
    return [
        AnnotatedImage(image.image_path, tuple(AnnotatedFace(f.box, mapping.get(f.label, f.label)) for f in image.faces))
        for image in images
    ]


def split_by_name(images: list[AnnotatedImage],
                  val_percent: int = 20) -> tuple[list[AnnotatedImage], list[AnnotatedImage]]:
    """Deterministic train/val split by a hash of each image's file name (stable when files are added).

    Returns:
        `(train, val)`, about `val_percent` % of the images in `val`.
    """
    import hashlib

    def in_val(image: AnnotatedImage) -> bool:
        return int(hashlib.sha256(Path(image.image_path).name.encode()).hexdigest()[:8], 16) % 100 < val_percent

    return [i for i in images if not in_val(i)], [i for i in images if in_val(i)]
