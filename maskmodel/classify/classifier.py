"""The ONNX mask classifier run by OpenCV's DNN module (no TensorFlow)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from maskmodel.classify.crops import Box, CropPolicy, crop_face
from maskmodel.errors import ModelCheckError, UsageError
from maskmodel.runtime.backends import read_onnx, resolve_backend
from maskmodel.zoo.schema import class_names_problem, input_problem


@dataclass(frozen=True)
class InputContract:
    """What the classifier expects, as written in the manifest."""

    size: int
    classes: tuple[str, ...]
    crop: CropPolicy

    def __post_init__(self) -> None:
        problem = class_names_problem(self.classes) or input_problem({"size": self.size, "crop": self.crop.to_dict()})
        if problem:
            raise UsageError(f"not a usable classifier contract: {problem}")

    @classmethod
    def from_manifest(cls, input: dict, classes: Sequence[str]) -> InputContract:
        """The contract of a manifest record's (or a `model.json`'s) `input` and `classes` fields."""
        problem = input_problem(input)
        if problem:
            raise UsageError(f"not a usable classifier contract: {problem}")
        return cls(size=input["size"], classes=tuple(classes), crop=CropPolicy.from_dict(input["crop"]))

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


class MaskClassifier:
    """Classify face crops with an exported ONNX model, through OpenCV DNN or ONNX Runtime.

    Both backends take the same blob: NCHW float32 RGB 0..255, as `cv2.dnn.blobFromImages(crops, 1.0,
    (S, S), swapRB=True)` makes it.

    Args:
        model_path: the ONNX file.
        contract: input size, class order and crop policy of that model.
        backend: `"opencv"` (`cv2.dnn`, always there), `"onnxruntime"` (the optional package), or
            `"auto"`: ONNX Runtime when installed, else OpenCV. Defaults to `"auto"`.
        engine: `cv2.dnn` engine for the OpenCV backend (see `maskmodel.runtime.read_onnx`). Defaults to
            `"auto"`.
    """

    def __init__(self, model_path: str | os.PathLike, contract: InputContract, backend: str = "auto",
                 engine: str = "auto") -> None:
        self.contract = contract
        self.backend = resolve_backend(backend)
        if self.backend == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = max(1, cv2.getNumThreads())  # share OpenCV's thread budget
            try:
                self._session = onnxruntime.InferenceSession(str(model_path), options,
                                                             providers=["CPUExecutionProvider"])
            except Exception as error:  # onnxruntime raises its own exception types
                raise ValueError(f"cannot load ONNX model {str(model_path)!r}: {error}") from error
            self._input_name = self._session.get_inputs()[0].name
        else:
            self._net = read_onnx(model_path, engine)
        self._name = os.fspath(model_path)
        self._dry_run()

    def _dry_run(self) -> None:
        """One inference on a grey crop: the model must run and give one probability per class."""
        size = self.contract.size
        try:
            self.predict_crops([np.full((size, size, 3), 128, np.uint8)])
        except ModelCheckError:
            raise
        except (cv2.error, ValueError, RuntimeError) as error:  # onnxruntime raises its own RuntimeErrors
            first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            raise ModelCheckError(f"{self._name} does not run on a {size}x{size} crop: {first}") from None

    def crops(self, image_bgr: np.ndarray, boxes: list[Box] | np.ndarray) -> list[np.ndarray]:
        """The classifier's input crops (BGR) of `boxes` in `image_bgr`, by the one crop function."""
        return [crop_face(image_bgr, tuple(box[:4]), self.contract.crop, self.contract.size) for box in boxes]

    def predict_crops(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Class probabilities, shape `(len(crops), classes)`, of face crops made by `crops()`.

        To classify the faces of a photo, use `predict(image, boxes)` (or `MaskDetector`): a whole
        photo is not a face crop, and is refused here. Crops go through the network in batches of at
        most `MAX_BATCH`, which bounds memory whatever the number of faces in a photo.

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
        for start in range(0, len(crops_bgr), MAX_BATCH):
            batch = crops_bgr[start : start + MAX_BATCH]
            blob = cv2.dnn.blobFromImages(batch, 1.0, (size, size), swapRB=True)
            if self.backend == "onnxruntime":
                output = self._session.run(None, {self._input_name: blob})[0]
            else:
                self._net.setInput(blob)
                output = self._net.forward()
            outputs.append(self._checked(np.asarray(output, dtype=np.float32).reshape(len(batch), -1)))
        return np.concatenate(outputs)

    def _checked(self, output: np.ndarray) -> np.ndarray:
        """`output` if it holds one probability per class for each crop, else `ModelCheckError`."""
        classes = self.contract.classes
        if output.shape[1] != len(classes):
            raise ModelCheckError(f"{self._name} gives {output.shape[1]} outputs per face for {len(classes)} classes "
                                  f"({', '.join(classes)}): the model and its contract do not match")
        if not np.isfinite(output).all():
            raise ModelCheckError(f"{self._name} gives outputs that are not finite (nan or inf)")
        if output.min() < -1e-3 or output.max() > 1 + 1e-3:
            raise ModelCheckError(f"{self._name} gives outputs outside 0..1 ({output.min():.4g} to {output.max():.4g}): "
                                  "not class probabilities")
        return output

    def predict(self, image_bgr: np.ndarray, boxes: list[Box] | np.ndarray) -> np.ndarray:
        """Class probabilities of the faces at `boxes` in `image_bgr` (see `predict_crops`)."""
        return self.predict_crops(self.crops(image_bgr, boxes))
