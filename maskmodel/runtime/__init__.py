"""How networks run: one runtime layer for every ONNX network (`backends`: `open_network` gives a `Network`
on OpenCV's `cv2.dnn`, ONNX Runtime or OpenVINO, the model prepared for it; `auto` picks the fastest
installed), the protobuf edits that prepare a model (`onnxproto`), and what the installed OpenCV can do
(`opencv`: the one capability check, with a one-line error naming the remedy)."""

from maskmodel.runtime.backends import (BACKENDS, DNN_ENGINES, PRECISIONS, Network, available, cpu_has_bf16,
                                        onnxruntime_available, open_network, openvino_available, read_onnx,
                                        resolve_backend, resolve_precision)
from maskmodel.runtime.opencv import OpenCVCapabilityError, has, require

__all__ = ["BACKENDS", "DNN_ENGINES", "Network", "OpenCVCapabilityError", "PRECISIONS", "available", "cpu_has_bf16",
           "has", "onnxruntime_available", "open_network", "openvino_available", "read_onnx", "require",
           "resolve_backend", "resolve_precision"]
