import numpy as np
import pytest

from maskmodel.evaluation.metrics import (classification_report, confusion_matrix, expected_calibration_error,
                                          fit_temperature, roc_auc, with_temperature)


def test_confusion_matrix_counts():
    assert confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], 2).tolist() == [[1, 1], [1, 2]]


def test_report_hand_computed():
    labels = np.array([0, 0, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    report = classification_report(labels, probabilities, ["with_mask", "without_mask"])
    assert report["accuracy"] == 0.75
    assert report["balanced_accuracy"] == (2 / 3 + 1) / 2
    assert report["per_class"]["without_mask"]["precision"] == 0.5
    assert report["per_class"]["with_mask"]["recall"] == 2 / 3
    assert report["roc_auc"] == 1.0  # every with_mask image scores above the without_mask one


def test_roc_auc_ties_and_degenerate():
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) is None
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 1.0


def test_expected_calibration_error_by_hand():
    # confidences 0.9 (two right) and 0.6 (one right, one wrong): |1 - 0.9| * 2/4 + |0.5 - 0.6| * 2/4 = 0.1
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error([0, 1, 0, 1], probabilities) == pytest.approx(0.1)
    assert classification_report(np.array([0, 1, 0, 1]), probabilities, ["a", "b"])["ece"] == pytest.approx(0.1)


def test_temperature_scaling_fixes_an_overconfident_model():
    rng = np.random.default_rng(0)
    first = 1 / (1 + np.exp(-rng.normal(0, 2, 4000)))  # probability of class 0, and labels drawn from it
    calibrated = np.column_stack([first, 1 - first])
    labels = (rng.uniform(size=4000) >= first).astype(int)
    overconfident = with_temperature(calibrated, 1 / 3)  # logits x 3
    temperature = fit_temperature(labels, overconfident)
    assert temperature == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(labels, overconfident)
    after = expected_calibration_error(labels, with_temperature(overconfident, temperature))
    assert after < before / 3 and after < 0.03
    assert np.array_equal(with_temperature(overconfident, temperature).argmax(1), overconfident.argmax(1))
