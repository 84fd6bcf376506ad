"""Evaluation of the classifier on annotated face boxes (runtime only: no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskmodel.evaluation.annotations import AnnotatedImage, canonical_labels
from maskmodel.classify.classifier import MaskClassifier
from maskmodel.detect.boxes import NO_FACES, box_iou, face_size
from maskmodel.detect.faces import FaceDetector, largest_face
from maskmodel.io.imageio import read_image
from maskmodel.evaluation.metrics import classification_report

TWO_CLASSES = ("with_mask", "without_mask")
SIZE_BUCKETS = (("<16", 0, 16), ("16-32", 16, 32), (">=32", 32, float("inf")))


def two_class_report(labels: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict:
    """`classification_report` over `TWO_CLASSES` for a model with those and possibly more classes.

    Faces of other classes are left out, and so are the model's other outputs (each face is called
    by the larger of its two probabilities, renormalised to sum to 1): for a two-class model this is the
    plain report.
    """
    columns = [classes.index(name) for name in TWO_CLASSES]
    labels = np.asarray(labels, int)
    keep = np.isin(labels, columns)
    remapped = np.array([columns.index(label) for label in labels[keep]], dtype=int)
    two = np.asarray(probabilities, np.float64)[keep][:, columns]
    two = two / np.clip(two.sum(axis=1, keepdims=True), 1e-12, None)
    return classification_report(remapped, two, list(TWO_CLASSES))


def _report_by_size(labels: np.ndarray, probabilities: np.ndarray, sizes: np.ndarray, classes: list[str],
                    report=classification_report) -> dict:
    """`report` over all faces, plus one per size bucket under `by_size`."""
    result = report(labels, probabilities, classes)
    result["by_size"] = {}
    for name, low, high in SIZE_BUCKETS:
        inside = (sizes >= low) & (sizes < high)
        result["by_size"][name] = report(labels[inside], probabilities[inside], classes)
    return result


def evaluate_annotated_faces(classifier: MaskClassifier, images: list[AnnotatedImage]) -> dict:
    """Classify every annotated face whose label (made canonical) is one of the classifier's classes.

    Labels are mapped by `annotations.CANONICAL_LABELS` (crowd-dev's `mask_weared_incorrect` becomes
    `mask_incorrect`); faces with other labels (for a two-class model, `mask_incorrect`) are counted
    and left out.

    Returns:
        `classification_report` over all faces, plus one per size bucket (`<16`, `16-32`, `>=32` px),
        and the same for `with_mask` / `without_mask` alone under `two_class` (see `two_class_report`).
    """
    classes = list(classifier.contract.classes)
    labels, probabilities, sizes, skipped = [], [], [], 0
    for annotated in canonical_labels(images):
        faces = [f for f in annotated.faces if f.label in classes]
        skipped += len(annotated.faces) - len(faces)
        if not faces:
            continue
        image = read_image(annotated.image_path)
        probabilities.append(classifier.predict(image, [f.box for f in faces]))
        labels += [classes.index(f.label) for f in faces]
        sizes += [face_size(f.box) for f in faces]
    labels_array, sizes_array = np.array(labels, dtype=int), np.array(sizes)
    probabilities_array = np.concatenate(probabilities)
    result = _report_by_size(labels_array, probabilities_array, sizes_array, classes)
    result["skipped_other_labels"] = skipped
    result["two_class"] = _report_by_size(labels_array, probabilities_array, sizes_array, classes, two_class_report)
    return result


def precision_recall_curve(scores: np.ndarray, hits: np.ndarray, positives: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision after each prediction, predictions ranked by descending score."""
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    true_positives = np.cumsum(np.asarray(hits, bool)[order])
    precision = true_positives / np.arange(1, len(order) + 1)
    return true_positives / max(positives, 1), precision


def average_precision(scores: np.ndarray, hits: np.ndarray, positives: int) -> float:
    """All-point interpolated AP from scored predictions marked true/false positive."""
    if positives == 0:
        return float("nan")
    recall, precision = precision_recall_curve(scores, hits, positives)
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def match_detections(
    boxes: np.ndarray, truth: np.ndarray, ignore: np.ndarray, iou_threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of score-sorted `boxes` to ground-truth boxes of one image.

    Returns:
        `(outcome, matched)`: per prediction 1 (true positive), 0 (false positive) or -1 (on an ignore
        region: neither), and per ground-truth box the index of its prediction or -1.
    """
    outcome = np.zeros(len(boxes), dtype=int)
    matched = np.full(len(truth), -1)
    for index, box in enumerate(boxes):
        overlaps = box_iou(box, truth)
        candidates = np.where((overlaps >= iou_threshold) & (matched < 0) & ~ignore)[0]
        if len(candidates):
            best = candidates[np.argmax(overlaps[candidates])]
            matched[best] = index
            outcome[index] = 1
        elif len(truth) and np.any((overlaps >= iou_threshold) & ignore):
            outcome[index] = -1
    return outcome, matched


def face_matches(images: list[AnnotatedImage], predictions: list[list], classes: tuple[str, ...],
                 iou_threshold: float) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """Class-agnostic matching of every image's faces at one IoU.

    Returns:
        Scores and hits of the predictions that count (not on an ignore region), the number of faces to
        find, and the matched `(M, 4)` predicted and annotated boxes.
    """
    scores, hits, positives, matched_pred, matched_truth = [], [], 0, [], []
    for annotated, faces in zip(images, predictions):
        truth = np.array([f.box for f in annotated.faces], dtype=np.float64).reshape(-1, 4)
        ignore = np.array([f.label not in classes for f in annotated.faces], dtype=bool)
        faces = sorted(faces, key=lambda f: -f.score)
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        outcome, matched = match_detections(boxes, truth, ignore, iou_threshold)
        positives += int((~ignore).sum())
        scores += [f.score for f, o in zip(faces, outcome) if o >= 0]
        hits += [o == 1 for o in outcome if o >= 0]
        matched_pred += [boxes[p] for p in matched if p >= 0]
        matched_truth += [truth[g] for g, p in enumerate(matched) if p >= 0]
    return (np.array(scores), np.array(hits, dtype=bool), positives, np.array(matched_pred).reshape(-1, 4),
            np.array(matched_truth).reshape(-1, 4))


def box_style(images: list[AnnotatedImage], predictions: list[list],
              classes: tuple[str, ...] = ("with_mask", "without_mask")) -> dict:
    """How the predicted boxes sit relative to the annotated ones, and what that costs in AP.

    Returns:
        `face_ap`: class-agnostic AP at IoU 0.3, 0.5 and averaged over 0.5:0.95 (step 0.05);
        `offset`: medians over the faces matched at IoU 0.3 of `dx`, `dy` (centre offset of the annotation
        in predicted widths/heights; positive = annotation lower/right) and `sw`, `sh` (annotated over
        predicted width/height), with the number of pairs: the `BoxAdjust` that `--fit-box` fits.
    """
    from maskmodel.detect.boxstyle import box_offsets

    def ap(iou: float) -> float:
        scores, hits, positives, _, _ = face_matches(images, predictions, classes, iou)
        return average_precision(scores, hits, positives)

    _, _, _, predicted, truth = face_matches(images, predictions, classes, 0.3)
    offsets = np.median(box_offsets(predicted, truth), axis=0) if len(predicted) else np.array([0.0, 0.0, 1.0, 1.0])
    return {
        "face_ap": {"0.3": ap(0.3), "0.5": ap(0.5),
                    "0.5:0.95": float(np.mean([ap(t) for t in np.arange(0.5, 0.951, 0.05)]))},
        "offset": {**dict(zip(("dx", "dy", "sw", "sh"), map(float, offsets))), "pairs": len(predicted)},
    }


def evaluate_detections(
    images: list[AnnotatedImage],
    predictions: list[list],
    classes: tuple[str, ...] = ("with_mask", "without_mask"),
    iou_threshold: float = 0.5,
) -> dict:
    """Face AP (class-agnostic), per-class AP and mAP, recall by face size, label accuracy.

    Args:
        images: ground truth; faces whose label is not in `classes` are ignore regions (a prediction on
            one is neither right nor wrong, and it is not a face to find).
        predictions: per image, the pipeline's faces (objects with `box`, `score`, `label`,
            `probabilities`), in any order.
        classes: the classifier's classes.
        iou_threshold: IoU for a match. Defaults to `0.5`.

    Per-class AP ranks each prediction of a class by detector score x class probability; a prediction
    on a face of another class is a false positive for its class. `precision` and `recall` are those of
    the faces as given (at the detector's threshold, where the boxes a user sees are decided). `curves`
    holds the precision-recall curves (face and per class).
    """
    face_scores, face_hits, positives = [], [], 0
    class_scores = {c: [] for c in classes}
    class_hits = {c: [] for c in classes}
    class_positives = {c: 0 for c in classes}
    sizes, found, label_right = [], [], []
    for annotated, faces in zip(images, predictions):
        truth = np.array([f.box for f in annotated.faces], dtype=np.float64).reshape(-1, 4)
        labels = [f.label for f in annotated.faces]
        ignore = np.array([label not in classes for label in labels], dtype=bool)
        faces = sorted(faces, key=lambda f: -f.score)
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        outcome, matched = match_detections(boxes, truth, ignore, iou_threshold)
        positives += int((~ignore).sum())
        keep = outcome >= 0
        face_scores += [f.score for f, k in zip(faces, keep) if k]
        face_hits += list(outcome[keep] == 1)
        for index, label in enumerate(labels):
            if ignore[index]:
                continue
            class_positives[label] += 1
            sizes.append(face_size(annotated.faces[index].box))
            found.append(matched[index] >= 0)
            if matched[index] >= 0:
                label_right.append(faces[matched[index]].label == label)
        truth_of = {int(p): labels[g] for g, p in enumerate(matched) if p >= 0}
        for index, face in enumerate(faces):
            if outcome[index] < 0:
                continue
            class_scores[face.label].append(face.score * face.probabilities[face.label])
            class_hits[face.label].append(truth_of.get(index) == face.label)
    sizes_array, found_array = np.array(sizes), np.array(found, dtype=bool)
    per_class = {c: average_precision(np.array(class_scores[c]), np.array(class_hits[c]), class_positives[c])
                 for c in classes}
    curves = {"face": precision_recall_curve(np.array(face_scores), np.array(face_hits), positives)}
    for c in classes:
        curves[c] = precision_recall_curve(np.array(class_scores[c]), np.array(class_hits[c]), class_positives[c])
    return {
        "images": len(images),
        "faces": positives,
        "predictions": int(sum(len(p) for p in predictions)),
        "face_ap50": average_precision(np.array(face_scores), np.array(face_hits), positives),
        "ap50": per_class,
        "map50": float(np.nanmean(list(per_class.values()))),
        "precision": float(np.mean(face_hits)) if face_hits else 0.0,
        "recall": float(found_array.mean()) if len(found_array) else 0.0,
        "recall_by_size": {
            name: float(found_array[(sizes_array >= low) & (sizes_array < high)].mean())
            for name, low, high in SIZE_BUCKETS
            if ((sizes_array >= low) & (sizes_array < high)).any()
        },
        "label_accuracy_on_matched": float(np.mean(label_right)) if label_right else 0.0,
        "curves": {name: {"recall": r.tolist(), "precision": p.tolist()} for name, (r, p) in curves.items()},
    }


@dataclass
class Mistake:
    """A wrongly classified image or face, for the gallery of worst mistakes."""

    crop: np.ndarray
    truth: str
    predicted: str
    confidence: float
    source: str


def evaluate_classification_folder(
    classifier: MaskClassifier,
    root: Path,
    face_detector: FaceDetector | None = None,
    worst: int = 32,
) -> tuple[dict, list[Mistake]]:
    """Classify every image of a folder-per-class set (`root/<class>/*`), as training would see it.

    Args:
        classifier: the classifier; folders named after its classes are read, others are ignored.
        root: dataset folder (pass `root/test` for one split of a train/val/test layout).
        face_detector: crop each image to its largest detected face (the whole image when none is
            found), like the training crops; `None` classifies whole images.
        worst: how many of the most confident mistakes to keep for the gallery.

    Returns:
        `classification_report` (plus unreadable files) and the worst mistakes.
    """
    from maskmodel.io.crawl import iter_inputs
    from maskmodel.io.imageio import ImageReadError

    classes = list(classifier.contract.classes)
    labels, probabilities, crops, sources, unreadable = [], [], [], [], {}
    for label in classes:
        folder = Path(root) / label
        if not folder.is_dir():
            continue
        for item in iter_inputs([folder]):
            try:
                image = read_image(item.path)
            except ImageReadError as error:
                unreadable[str(item.path)] = str(error)
                continue
            boxes = face_detector.detect(image) if face_detector is not None else NO_FACES
            box, _ = largest_face(boxes, image)
            crop = classifier.crops(image, [box])[0]
            probabilities.append(classifier.predict_crops([crop])[0])
            labels.append(classes.index(label))
            crops.append(cv2.resize(crop, (96, 96), interpolation=cv2.INTER_AREA))
            sources.append(str(item.path))
    if not labels:
        raise ValueError(f"Expected class folders {classes} with images under {str(root)!r}")
    probabilities_array = np.stack(probabilities)
    result = classification_report(np.array(labels), probabilities_array, classes)
    result["unreadable"] = unreadable
    predicted = probabilities_array.argmax(axis=1)
    wrong = [i for i in range(len(labels)) if predicted[i] != labels[i]]
    wrong.sort(key=lambda i: -probabilities_array[i, predicted[i]])
    mistakes = [Mistake(crops[i], classes[labels[i]], classes[predicted[i]], float(probabilities_array[i, predicted[i]]),
                        sources[i]) for i in wrong[:worst]]
    return result, mistakes


def classify_annotated_boxes(classifier: MaskClassifier, images: list[AnnotatedImage]) -> list[list]:
    """Classifier-only predictions: every annotated box classified, detector score 1.0."""
    from maskmodel.pipeline import Face

    classes = list(classifier.contract.classes)
    predictions = []
    for annotated in images:
        if not annotated.faces:
            predictions.append([])
            continue
        probabilities = classifier.predict(read_image(annotated.image_path), [f.box for f in annotated.faces])
        predictions.append([
            Face(tuple(map(float, f.box)), 1.0, classes[int(np.argmax(p))], dict(zip(classes, map(float, p))))
            for f, p in zip(annotated.faces, probabilities)
        ])
    return predictions
