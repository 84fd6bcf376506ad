"""How networks run: the inference backends (OpenCV's `cv2.dnn`, the optional ONNX Runtime) that the
classifier and the face detectors share (`backends`), and what the installed OpenCV can do (`opencv`: the
one capability check, with a one-line error naming the remedy)."""

from maskmodel.runtime.backends import BACKENDS, DNN_ENGINES, onnxruntime_available, read_onnx, resolve_backend
from maskmodel.runtime.opencv import OpenCVCapabilityError, has, require

__all__ = ["BACKENDS", "DNN_ENGINES", "OpenCVCapabilityError", "has", "onnxruntime_available", "read_onnx", "require",
           "resolve_backend"]
