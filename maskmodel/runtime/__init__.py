"""How networks run: the inference backends (OpenCV's `cv2.dnn`, the optional ONNX Runtime) that the
classifier and the face detectors share."""

from maskmodel.runtime.backends import BACKENDS, DNN_ENGINES, onnxruntime_available, read_onnx, resolve_backend

__all__ = ["BACKENDS", "DNN_ENGINES", "onnxruntime_available", "read_onnx", "resolve_backend"]
