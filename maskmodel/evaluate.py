"""Evaluation of the classifier on annotated face boxes (runtime only: no TensorFlow)."""

from __future__ import annotations

import numpy as np

from maskmodel.annotations import AnnotatedImage
from maskmodel.classifier import MaskClassifier
from maskmodel.imageio import read_image
from maskmodel.metrics import classification_report

# crowd-dev photos that also appear (whole, or a near-identical face) in real-facemask: left out of
# every crowd-dev evaluation.
CROWD_DEV_OVERLAP = frozenset({"maksssksksss71.png", "maksssksksss758.png"})
SIZE_BUCKETS = (("<16", 0, 16), ("16-32", 16, 32), (">=32", 32, float("inf")))


def face_size(box: tuple[float, float, float, float]) -> float:
    """Face size in pixels: the longer side of its box."""
    return max(box[2] - box[0], box[3] - box[1])


def evaluate_annotated_faces(classifier: MaskClassifier, images: list[AnnotatedImage]) -> dict:
    """Classify every annotated face whose label is one of the classifier's classes.

    Faces with other labels (for example `mask_weared_incorrect`) are counted and left out.

    Returns:
        `classification_report` over all faces, plus one per size bucket (`<16`, `16-32`, `>=32` px).
    """
    classes = list(classifier.contract.classes)
    labels, probabilities, sizes, skipped = [], [], [], 0
    for annotated in images:
        faces = [f for f in annotated.faces if f.label in classes]
        skipped += len(annotated.faces) - len(faces)
        if not faces:
            continue
        image = read_image(annotated.image_path)
        probabilities.append(classifier.predict(image, [f.box for f in faces]))
        labels += [classes.index(f.label) for f in faces]
        sizes += [face_size(f.box) for f in faces]
    labels_array, sizes_array = np.array(labels), np.array(sizes)
    probabilities_array = np.concatenate(probabilities)
    result = classification_report(labels_array, probabilities_array, classes)
    result["skipped_other_labels"] = skipped
    result["by_size"] = {}
    for name, low, high in SIZE_BUCKETS:
        inside = (sizes_array >= low) & (sizes_array < high)
        result["by_size"][name] = classification_report(
            labels_array[inside], probabilities_array[inside], classes
        )
    return result
