"""The inference backends of the ONNX networks (the mask classifier, CenterFace): OpenCV's `cv2.dnn`,
always there, and ONNX Runtime, an optional package used when installed (`"auto"`)."""

from __future__ import annotations

import importlib.util
import os

import cv2

from maskmodel.runtime.opencv import require

BACKENDS = ("auto", "opencv", "onnxruntime")
DNN_ENGINES = ("auto", "new", "classic")


def onnxruntime_available() -> bool:
    """Whether the optional `onnxruntime` package can be imported."""
    return importlib.util.find_spec("onnxruntime") is not None


def resolve_backend(backend: str) -> str:
    """The backend `backend` names: `"opencv"` or `"onnxruntime"` as given; `"auto"` is ONNX Runtime when
    installed, else OpenCV.

    Raises:
        ValueError: `backend` is not one of `BACKENDS`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"Expected backend in {BACKENDS}. Received: backend={backend!r}")
    if backend == "auto":
        return "onnxruntime" if onnxruntime_available() else "opencv"
    return backend


def read_onnx(model_path: str | os.PathLike, engine: str = "auto") -> cv2.dnn.Net:
    """`cv2.dnn.readNetFromONNX` with an engine by name: `auto` (OpenCV's choice), or on OpenCV 5
    `new` / `classic`."""
    if engine not in DNN_ENGINES:
        raise ValueError(f"Expected engine in {DNN_ENGINES}. Received: engine={engine!r}")
    try:
        if engine == "auto":
            return cv2.dnn.readNetFromONNX(str(model_path))
        require("dnn_engines", f"DNN engine {engine!r}")
        return cv2.dnn.readNetFromONNX(str(model_path), getattr(cv2.dnn, f"ENGINE_{engine.upper()}"))
    except cv2.error as error:
        raise ValueError(f"cannot load ONNX model {str(model_path)!r}: {error.msg.strip()}") from error
