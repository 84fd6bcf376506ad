"""Detection metrics against hand-computed cases."""

from dataclasses import dataclass

import numpy as np
import pytest

from maskmodel.evaluation.annotations import AnnotatedFace, AnnotatedImage
from maskmodel.evaluation.evaluate import average_precision, evaluate_detections


@dataclass
class Pred:
    box: tuple
    score: float
    label: str
    probabilities: dict


def pred(box, score, label="with_mask", p=1.0):
    other = "without_mask" if label == "with_mask" else "with_mask"
    return Pred(box, score, label, {label: p, other: 1 - p})


IMAGE = AnnotatedImage("x.png", (
    AnnotatedFace((0, 0, 10, 10), "with_mask"),
    AnnotatedFace((20, 0, 40, 20), "without_mask"),
    AnnotatedFace((50, 0, 90, 40), "mask_weared_incorrect"),
))


def test_perfect_predictions():
    result = evaluate_detections([IMAGE], [[pred((0, 0, 10, 10), 0.9), pred((20, 0, 40, 20), 0.8, "without_mask")]])
    assert result["face_ap50"] == 1.0 and result["map50"] == 1.0 and result["recall"] == 1.0
    assert result["precision"] == 1.0 and result["label_accuracy_on_matched"] == 1.0
    assert result["recall_by_size"] == {"<16": 1.0, "16-32": 1.0}


def test_no_predictions():
    result = evaluate_detections([IMAGE], [[]])
    assert result["face_ap50"] == 0.0 and result["recall"] == 0.0 and result["map50"] == 0.0
    assert result["precision"] == 0.0


def test_one_false_positive_ranked_first():
    result = evaluate_detections([IMAGE], [[pred((100, 100, 120, 120), 0.95), pred((0, 0, 10, 10), 0.9),
                                            pred((20, 0, 40, 20), 0.8, "without_mask")]])
    # precision at recall 0.5 is 1/2, at recall 1.0 is 2/3 -> AP = 0.5 * 2/3 + 0.5 * 2/3
    assert result["face_ap50"] == pytest.approx(2 / 3)
    assert result["precision"] == pytest.approx(2 / 3) and result["recall"] == 1.0


def test_duplicate_detection_is_a_false_positive():
    result = evaluate_detections([IMAGE], [[pred((0, 0, 10, 10), 0.9), pred((0, 0, 10, 11), 0.85),
                                            pred((20, 0, 40, 20), 0.8, "without_mask")]])
    # ranks: TP, FP, TP -> precision 1 at recall .5, 2/3 at recall 1
    assert result["face_ap50"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ignore_region_is_neither_right_nor_wrong():
    result = evaluate_detections([IMAGE], [[pred((50, 0, 90, 40), 0.99), pred((0, 0, 10, 10), 0.9),
                                            pred((20, 0, 40, 20), 0.8, "without_mask")]])
    assert result["face_ap50"] == 1.0 and result["faces"] == 2 and result["precision"] == 1.0


def test_wrong_label_counts_against_the_class():
    result = evaluate_detections([IMAGE], [[pred((0, 0, 10, 10), 0.9), pred((20, 0, 40, 20), 0.8, "with_mask")]])
    assert result["face_ap50"] == 1.0
    assert result["ap50"]["without_mask"] == 0.0 and result["ap50"]["with_mask"] == pytest.approx(1.0)
    assert result["label_accuracy_on_matched"] == 0.5


def test_average_precision_interpolates():
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert np.isnan(average_precision(np.array([]), np.array([]), 0))
