"""`load`: a zoo model by name (or a model you trained) as the object that runs it.

It builds classifiers (`maskmodel.classify`) and face detectors (`maskmodel.detect`) from the records
and files of the zoo (`maskmodel.zoo`), so it sits above all three; `maskmodel.load` is this function.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from maskmodel.classify.classifier import InputContract, MaskClassifier
from maskmodel.detect.detector_config import DetectorConfig
from maskmodel.detect.faces import FaceDetector
from maskmodel.runtime.extras import require_train_extra
from maskmodel.runtime.opencv import quiet_opencv
from maskmodel.runtime.tensorflow_logs import tensorflow_quietly, user_chose_a_level
from maskmodel.zoo.downloads import weights_path
from maskmodel.zoo.local_models import is_local_model, model_record
from maskmodel.zoo.registry import DEFAULT_CLASSIFIER, ModelNotFoundError, model_info

if TYPE_CHECKING:
    import keras


def load(name: str = DEFAULT_CLASSIFIER, version: str | None = None, format: str = "onnx",
         path: str | os.PathLike | None = None, backend: str = "auto",
         precision: str = "auto") -> MaskClassifier | FaceDetector | keras.Model:
    """Load a model: a zoo name (`name@version` accepted; the default version if none is given; face
    detectors also by their short name, `"yunet"`), or a model you trained (a `maskmodel train` run
    directory, or its `.onnx` / `.keras` file).

    Args:
        name: model name from `list_models()`, or the path of a run directory or model file.
        version: version; defaults to the model's default version.
        format: `"onnx"` (a `MaskClassifier` run by OpenCV DNN) or `"keras"` (a Keras model; needs the
            `[train]` extra, else `MissingExtraError` naming it; TensorFlow's start-up logs are silenced
            unless `TF_CPP_MIN_LOG_LEVEL` is set). Face detectors load from their own files. Defaults to `"onnx"`.
        path: use this local file instead of the installed/cached/downloaded one (checked by sha256;
            for a face detector, its first file).
        backend: for ONNX models (classifiers, CenterFace, the SSD): `"auto"`, `"opencv"`, `"onnxruntime"`
            or `"openvino"` (see `maskmodel.runtime.backends`).
        precision: for ONNX models: `"auto"`, `"fp32"` or `"bf16"`.

    Returns:
        A `MaskClassifier`, a Keras model, or a face detector with its default settings.
    """
    if is_local_model(name):
        info = model_record(name)
        if format not in info.files:
            raise ModelNotFoundError(f"{name} has no {format!r} file. Available: {', '.join(info.files)}")
        file = info.files[format].file
    else:
        info = model_info(name, version)
        if info.task == "face-detection":
            config = DetectorConfig(info.alias, version=info.version, path=None if path is None else str(path))
            with quiet_opencv():  # OpenCV 5's YuNet warns that its DNN engine ignores targets
                return config.build(backend, precision)
        file = weights_path(info.name, info.version, format, path)
    if format == "keras":
        require_train_extra('maskmodel.load(..., format="keras")')
        with tensorflow_quietly(not user_chose_a_level()):
            import keras

        return keras.saving.load_model(file)
    return MaskClassifier(file, InputContract.from_manifest(info.input, info.classes), backend, precision=precision)
