"""The ONNX mask classifier, run by the runtime layer (`maskmodel.runtime`: OpenCV's DNN module, ONNX Runtime
or OpenVINO; no TensorFlow)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from maskmodel.classify.crops import Box, CropPolicy, crop_face
from maskmodel.runtime.backends import open_network


@dataclass(frozen=True)
class InputContract:
    """What the classifier expects, as written in the manifest."""

    size: int
    classes: tuple[str, ...]
    crop: CropPolicy

    @classmethod
    def from_manifest(cls, input: dict, classes: Sequence[str]) -> InputContract:
        """The contract of a manifest record's (or a `model.json`'s) `input` and `classes` fields."""
        return cls(size=int(input["size"]), classes=tuple(classes), crop=CropPolicy.from_dict(input["crop"]))

    def to_manifest(self) -> dict:
        """The `classes` and `input` fields of a manifest entry (or a run directory's `model.json`)."""
        return {
            "classes": list(self.classes),
            "input": {
                "size": self.size,
                "colour": "RGB",
                "range": [0, 255],
                "layout": {"onnx": "NCHW (cv2.dnn.blobFromImages(crops, 1.0, (S, S), swapRB=True))",
                           "keras": "NHWC"},
                "normalisation": "inside the graph (x / 127.5 - 1)",
                "crop": self.crop.to_dict(),
            },
        }


MAX_BATCH = 8
# Crops per network call, by backend, measured with bench.runtimes (docs/benchmarks.md): cv2.dnn and ONNX
# Runtime cost more per face in batches above 2 on these CPUs; OpenVINO costs less up to 8, with a static
# shape compiled per batch size of STATIC_BATCHES (a batch padded up to the next: 2x faster than a
# dynamic batch dimension).
BATCH_SIZES = {"opencv": 2, "onnxruntime": 2, "openvino": MAX_BATCH}
STATIC_BATCHES = (1, 2, 4, 8)


class MaskClassifier:
    """Classify face crops with an exported ONNX model, on any backend of `maskmodel.runtime`.

    Every backend takes the same blob: NCHW float32 RGB 0..255, as `cv2.dnn.blobFromImages(crops, 1.0,
    (S, S), swapRB=True)` makes it, S being the contract's input size.

    Args:
        model_path: the ONNX file.
        contract: input size, class order and crop policy of that model.
        backend: `"opencv"` (`cv2.dnn`, always there), `"onnxruntime"`, `"openvino"`, or `"auto"`: the
            fastest installed (see `maskmodel.runtime.backends`). Defaults to `"auto"`.
        engine: `cv2.dnn` engine for the OpenCV backend (see `maskmodel.runtime.read_onnx`). Defaults to
            `"auto"`.
        precision: `"auto"` (bf16 on OpenVINO where the CPU has it, else fp32), `"fp32"` or `"bf16"`.
            Defaults to `"auto"`.
    """

    def __init__(self, model_path: str | os.PathLike, contract: InputContract, backend: str = "auto",
                 engine: str = "auto", precision: str = "auto") -> None:
        self.contract = contract
        self._network = open_network(model_path, backend, precision, engine=engine, batches=STATIC_BATCHES)
        self.backend, self.precision = self._network.backend, self._network.precision
        self.batch_size = BATCH_SIZES[self.backend]

    def crops(self, image_bgr: np.ndarray, boxes: list[Box] | np.ndarray) -> list[np.ndarray]:
        """The classifier's input crops (BGR) of `boxes` in `image_bgr`, by the one crop function."""
        return [crop_face(image_bgr, tuple(box[:4]), self.contract.crop, self.contract.size) for box in boxes]

    def predict_crops(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Class probabilities, shape `(len(crops), classes)`, of face crops made by `crops()`.

        To classify the faces of a photo, use `predict(image, boxes)` (or `MaskDetector`): a whole
        photo is not a face crop, and is refused here. Crops go through the network in batches of at
        most `MAX_BATCH` (the backend's best, `BATCH_SIZES`), which bounds memory whatever the number of
        faces in a photo.

        Raises:
            ValueError: a crop is not S x S x 3 (S: the contract's input size).
        """
        if not crops_bgr:
            return np.zeros((0, len(self.contract.classes)), dtype=np.float32)
        size = self.contract.size
        wrong = next((c.shape for c in crops_bgr if c.shape != (size, size, 3)), None)
        if wrong is not None:
            raise ValueError(f"predict_crops takes {size}x{size}x3 face crops made by crops(); got an array of "
                             f"shape {wrong}. For the faces of a photo use predict(image, boxes) or MaskDetector.")
        outputs = []
        for start in range(0, len(crops_bgr), self.batch_size):
            batch = crops_bgr[start : start + self.batch_size]
            output = self._network.run(cv2.dnn.blobFromImages(batch, 1.0, (size, size), swapRB=True))[0]
            outputs.append(np.asarray(output, dtype=np.float32).reshape(len(batch), -1))
        return np.concatenate(outputs)

    def predict(self, image_bgr: np.ndarray, boxes: list[Box] | np.ndarray) -> np.ndarray:
        """Class probabilities of the faces at `boxes` in `image_bgr` (see `predict_crops`)."""
        return self.predict_crops(self.crops(image_bgr, boxes))
