"""maskmodel: face-mask detection with pretrained MobileNetV2 classifiers.

The runtime (this package's top level) needs only OpenCV and NumPy. Training lives in
`maskmodel.training` and imports Keras/TensorFlow only when used (`pip install ".[train]"`).
"""

from __future__ import annotations

from maskmodel.io.imageio import read_image  # first: it sets OpenCV's pixel limit before cv2 loads
from maskmodel.batch.run import AnnotateSettings, annotate
from maskmodel.classify.classifier import InputContract, MaskClassifier
from maskmodel.classify.crops import CropPolicy, crop_face
from maskmodel.detect.detector_config import DetectorConfig, available_detectors, create_face_detector
from maskmodel.errors import MaskmodelError, MissingExtraError, UsageError
from maskmodel.pipeline import MaskDetector
from maskmodel.results import Detections, Face, ImageResult
from maskmodel.loading import load
from maskmodel.zoo import DEFAULT_CLASSIFIER, ModelVersion, list_models, model_info, weights_path

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CLASSIFIER",
    "AnnotateSettings",
    "CropPolicy",
    "DetectorConfig",
    "Detections",
    "Face",
    "ImageResult",
    "InputContract",
    "MaskClassifier",
    "MaskDetector",
    "MaskmodelError",
    "MissingExtraError",
    "ModelVersion",
    "UsageError",
    "annotate",
    "available_detectors",
    "build_model",
    "create_face_detector",
    "crop_face",
    "list_models",
    "load",
    "model_info",
    "read_image",
    "weights_path",
]


def __getattr__(name: str):
    if name == "build_model":  # lazy: importing it pulls in Keras
        from maskmodel.runtime.extras import require_train_extra

        require_train_extra("maskmodel.build_model")
        from maskmodel.runtime.tensorflow_logs import tensorflow_quietly, user_chose_a_level

        with tensorflow_quietly(not user_chose_a_level()):  # the builder imports Keras only when called: load it here
            import keras  # noqa: F401
            from maskmodel.training.builder import build_model

        return build_model
    raise AttributeError(f"module 'maskmodel' has no attribute {name!r}")
