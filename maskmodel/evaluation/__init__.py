"""Evaluation without TensorFlow: annotated datasets (VOC, YOLO), classification metrics and detection
average precision."""

from maskmodel.evaluation.annotations import AnnotatedFace, AnnotatedImage, read_voc_folder, read_yolo_folder
from maskmodel.evaluation.evaluate import evaluate_classification_folder, evaluate_detections
from maskmodel.evaluation.metrics import classification_report

__all__ = ["AnnotatedFace", "AnnotatedImage", "classification_report", "evaluate_classification_folder",
           "evaluate_detections", "read_voc_folder", "read_yolo_folder"]
