"""`load`: a model by zoo name (`name@version`) or by path (a run directory or model file of
`maskmodel train`), as the object that runs it."""

from __future__ import annotations

from maskmodel.classifier import InputContract, MaskClassifier
from maskmodel.faces import FACE_DETECTORS, create_face_detector
from maskmodel.local_models import is_local_model, model_record
from maskmodel.zoo import DEFAULT_CLASSIFIER, ModelNotFoundError, model_info, weights_path


def load(name: str = DEFAULT_CLASSIFIER, version: str | None = None, format: str = "onnx",
         path: str | None = None, backend: str = "auto"):
    """Load a model: a zoo name (`name@version` accepted; the default version if none is given), or a
    model you trained (a `maskmodel train` run directory, or its `.onnx` / `.keras` file).

    Args:
        name: model name from `list_models()`, or the path of a run directory or model file.
        version: version; defaults to the model's default version.
        format: `"onnx"` (a `MaskClassifier` run by OpenCV DNN, or a face detector) or `"keras"`
            (a Keras model; needs the `[train]` extra). Defaults to `"onnx"`.
        path: use this local file instead of the installed/cached/downloaded one (checked by sha256).
        backend: for ONNX classifiers: `"opencv"`, `"onnxruntime"` or `"auto"` (see `MaskClassifier`).
    """
    if is_local_model(name):
        info = model_record(name)
        if format not in info["files"]:
            raise ModelNotFoundError(f"{name} has no {format!r} file. Available: {', '.join(info['files'])}")
        file = info["files"][format]
    else:
        info = model_info(name, version)
        if info["task"] == "face-detection":
            short = {v: k for k, v in FACE_DETECTORS.items()}[info["name"]]
            return create_face_detector(short)
        file = weights_path(info["name"], info["version"], format, path)
    if format == "keras":
        import keras

        return keras.saving.load_model(file)
    return MaskClassifier(file, InputContract.from_manifest(info), backend)
