import numpy as np

from maskmodel.evaluation.metrics import classification_report, confusion_matrix, roc_auc


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
