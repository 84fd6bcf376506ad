"""The ONNX mask classifier run by OpenCV's DNN module (no TensorFlow)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from maskmodel.crops import Box, CropPolicy, crop_face


@dataclass(frozen=True)
class InputContract:
    """What the classifier expects, as written in the manifest."""

    size: int
    classes: tuple[str, ...]
    crop: CropPolicy

    @classmethod
    def from_manifest(cls, entry: dict) -> InputContract:
        contract = entry["input"]
        return cls(
            size=int(contract["size"]),
            classes=tuple(entry["classes"]),
            crop=CropPolicy.from_dict(contract["crop"]),
        )


DNN_ENGINES = ("ort", "new", "classic", "auto")


def default_engine() -> str:
    """The fastest `cv2.dnn` engine of this OpenCV: ONNX Runtime inside OpenCV 5, else OpenCV's own."""
    return "ort" if hasattr(cv2.dnn, "ENGINE_ORT") else "auto"


def read_onnx(model_path: str | os.PathLike, engine: str | None = None) -> cv2.dnn.Net:
    """`cv2.dnn.readNetFromONNX` with an engine by name (`ort`, `new`, `classic`; `auto` lets OpenCV choose).

    OpenCV 4 has one engine: any name but `auto` is refused there.
    """
    engine = engine or default_engine()
    if engine not in DNN_ENGINES:
        raise ValueError(f"Expected engine in {DNN_ENGINES}. Received: engine={engine!r}")
    try:
        if engine == "auto":
            return cv2.dnn.readNetFromONNX(str(model_path))
        if not hasattr(cv2.dnn, f"ENGINE_{engine.upper()}"):
            raise ValueError(f"OpenCV {cv2.__version__} has no {engine!r} DNN engine; use engine='auto'")
        return cv2.dnn.readNetFromONNX(str(model_path), getattr(cv2.dnn, f"ENGINE_{engine.upper()}"))
    except cv2.error as error:
        raise ValueError(f"cannot load ONNX model {str(model_path)!r}: {error.msg.strip()}") from error


class MaskClassifier:
    """Classify face crops with an exported ONNX model through `cv2.dnn`.

    Args:
        model_path: ONNX file taking NCHW float32 RGB 0..255 (`blobFromImages(..., swapRB=True)`).
        contract: input size, class order and crop policy of that model.
        engine: `cv2.dnn` engine (see `read_onnx`). Defaults to `default_engine()`: ONNX Runtime
            bundled in OpenCV 5 (the fastest here, see docs/benchmarks.md), OpenCV's own engine on 4.x.
    """

    def __init__(self, model_path: str | os.PathLike, contract: InputContract, engine: str | None = None) -> None:
        self.contract = contract
        self.engine = engine or default_engine()
        self._net = read_onnx(model_path, self.engine)

    def crops(self, image_bgr: np.ndarray, boxes: list[Box] | np.ndarray) -> list[np.ndarray]:
        """The classifier's input crops (BGR) of `boxes` in `image_bgr`, by the one crop function."""
        return [crop_face(image_bgr, tuple(box[:4]), self.contract.crop, self.contract.size) for box in boxes]

    def predict_crops(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Class probabilities, shape `(len(crops), classes)`, of ready-made BGR crops in one batch."""
        if not crops_bgr:
            return np.zeros((0, len(self.contract.classes)), dtype=np.float32)
        size = self.contract.size
        blob = cv2.dnn.blobFromImages(crops_bgr, 1.0, (size, size), swapRB=True)
        self._net.setInput(blob)
        return np.asarray(self._net.forward(), dtype=np.float32).reshape(len(crops_bgr), -1)

    def predict(self, image_bgr: np.ndarray, boxes: list[Box] | np.ndarray) -> np.ndarray:
        """Class probabilities of the faces at `boxes` in `image_bgr` (one batch per image)."""
        return self.predict_crops(self.crops(image_bgr, boxes))
