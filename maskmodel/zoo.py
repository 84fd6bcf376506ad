"""The model zoo: published, versioned models by name, as the objects that run them.

The whole registry API in one place (as torchvision's `get_model` / `get_weight` / `list_models`):
`list_models`, `model_info` (a typed `ModelVersion`), `model_versions`, `weights_path` (a verified local
file) and `load` (the model itself). The records come from `weights/manifest.json`
(`maskmodel.registry`), the files are found, downloaded and checked by `maskmodel.downloads`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from maskmodel.capabilities import OpenCVCapabilityError
from maskmodel.classifier import InputContract, MaskClassifier
from maskmodel.detector_config import DetectorConfig
from maskmodel.downloads import (ChecksumError, WeightsUnavailableError, cache_dir, download_file, install_from,
                                 sha256_of, weights_path)
from maskmodel.faces import FaceDetector
from maskmodel.local_models import is_local_model, model_record
from maskmodel.registry import (DEFAULT_CLASSIFIER, DEFAULT_FACE_DETECTOR, SEMVER, ModelNotFoundError, ModelVersion,
                                WeightsFile, detector_aliases, is_default_model, list_models, manifest, model_info, model_versions,
                                package_weights_dir, weights_file)

if TYPE_CHECKING:
    import keras

__all__ = [
    "DEFAULT_CLASSIFIER", "DEFAULT_FACE_DETECTOR", "SEMVER", "ChecksumError", "ModelNotFoundError", "ModelVersion", "OpenCVCapabilityError", "WeightsFile",
    "WeightsUnavailableError", "cache_dir", "detector_aliases", "download_file", "install_from", "is_default_model", "list_models",
    "load", "manifest", "model_info", "model_versions", "package_weights_dir", "sha256_of", "weights_file",
    "weights_path",
]


def load(name: str = DEFAULT_CLASSIFIER, version: str | None = None, format: str = "onnx",
         path: str | os.PathLike | None = None, backend: str = "auto") -> MaskClassifier | FaceDetector | keras.Model:
    """Load a model: a zoo name (`name@version` accepted; the default version if none is given; face
    detectors also by their short name, `"yunet"`), or a model you trained (a `maskmodel train` run
    directory, or its `.onnx` / `.keras` file).

    Args:
        name: model name from `list_models()`, or the path of a run directory or model file.
        version: version; defaults to the model's default version.
        format: `"onnx"` (a `MaskClassifier` run by OpenCV DNN) or `"keras"` (a Keras model; needs the
            `[train]` extra). Face detectors load from their own files. Defaults to `"onnx"`.
        path: use this local file instead of the installed/cached/downloaded one (checked by sha256;
            for a face detector, its first file).
        backend: for ONNX classifiers: `"opencv"`, `"onnxruntime"` or `"auto"` (see `MaskClassifier`).

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
            return DetectorConfig(info.alias, version=info.version, path=None if path is None else str(path)).build()
        file = weights_path(info.name, info.version, format, path)
    if format == "keras":
        import keras

        return keras.saving.load_model(file)
    return MaskClassifier(file, InputContract.from_manifest(info.input, info.classes), backend)
