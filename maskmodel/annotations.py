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
