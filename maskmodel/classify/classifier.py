"""The ONNX mask classifier, run by the runtime layer (`maskmodel.runtime`: OpenCV's DNN module, ONNX Runtime
or OpenVINO; no TensorFlow)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from maskmodel.classify.crops import Box, CropPolicy, crop_face
from maskmodel.errors import ModelCheckError, UsageError
from maskmodel.runtime.backends import open_network
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


# Crops per network call, by backend (docs/benchmarks.md, "Runtimes"): cv2.dnn and ONNX Runtime cost more
# per face in batches above 2 on these CPUs. OpenVINO runs a static input shape (about 2x faster than a
# dynamic batch dimension) and each shape costs a compilation (0.15 s a process), so it compiles one shape
# and takes the faces one by one (whether batches would pay once compiled is still open: see the docs).
BATCH_SIZES = {"opencv": 2, "onnxruntime": 2, "openvino": 1}
# The classifier runs in float32 unless bf16 is asked for: on 40 crowd-dev faces, OpenVINO bf16 moved the
# default classifier's (0.35@3.0.0, 128 px) probabilities by up to 0.22 (tests/test_runtime.py), and the
# classifier is a small share of a photo's time (docs/benchmarks.md); the face detector's auto is bf16.
AUTO_PRECISION = "fp32"


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
        precision: `"auto"` (fp32, see `AUTO_PRECISION`), `"fp32"` or `"bf16"` (OpenVINO on a CPU with
            bf16). Defaults to `"auto"`.
    """

    def __init__(self, model_path: str | os.PathLike, contract: InputContract, backend: str = "auto",
                 engine: str = "auto", precision: str = "auto") -> None:
        self.contract = contract
        precision = AUTO_PRECISION if precision == "auto" else precision
        self._network = open_network(model_path, backend, precision, engine=engine, static_shapes=True)
        self.backend, self.precision = self._network.backend, self._network.precision
        self.batch_size = BATCH_SIZES[self.backend]
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
        most the backend's best size (`BATCH_SIZES`), which bounds memory whatever the number of
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
