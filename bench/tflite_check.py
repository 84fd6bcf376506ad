"""Accuracy of TFLite exports against their Keras model on the same labelled face crops.

Used by `tests/test_tflite.py` and `python -m bench.tflite`: float16 and full-integer int8 (calibrated on
training crops) must classify real faces as the Keras model does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.common import CROWD_DEV_OVERLAP
from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.classify.classifier import MaskClassifier
from maskmodel.detect.detector_config import one_face_detector
from maskmodel.detect.faces import largest_face
from maskmodel.io.imageio import read_image


def folder_crops(classifier: MaskClassifier, root: Path, per_class: int) -> tuple[list[np.ndarray], list[int]]:
    """BGR crops of the largest face of the first `per_class` images of each class folder, with labels."""
    detector, crops, labels = one_face_detector(), [], []
    for index, label in enumerate(classifier.contract.classes):
        for path in sorted((Path(root) / label).iterdir())[:per_class]:
            image = read_image(path)
            box, _ = largest_face(detector.detect(image), image)
            crops += classifier.crops(image, [box])
            labels.append(index)
    return crops, labels


def crowd_crops(classifier: MaskClassifier, dataset: Path, limit: int) -> tuple[list[np.ndarray], list[int]]:
    """BGR crops of the first `limit` annotated with/without-mask faces of a VOC set, with labels (crowd-dev's
    `CROWD_DEV_OVERLAP` photos left out)."""
    classes = list(classifier.contract.classes)
    crops, labels = [], []
    for annotated in read_voc_folder(dataset, CROWD_DEV_OVERLAP):
        faces = [f for f in annotated.faces if f.label in classes]
        if faces:
            crops += classifier.crops(read_image(annotated.image_path), [f.box for f in faces])
            labels += [classes.index(f.label) for f in faces]
        if len(crops) >= limit:
            break
    return crops[:limit], labels[:limit]


def tflite_probabilities(path: Path, crops_bgr: list[np.ndarray]) -> np.ndarray:
    """Run a TFLite classifier (NHWC RGB 0..255, batch 1) over BGR crops with TensorFlow's interpreter."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for crop in crops_bgr:
        interpreter.set_tensor(source["index"], crop[None, :, :, ::-1].astype(np.float32))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0])
    return np.stack(outputs)
