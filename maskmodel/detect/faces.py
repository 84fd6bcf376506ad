"""Face detectors behind one small interface.

Every detector has ``detect(image_bgr) -> np.ndarray`` returning an ``(N, 5)`` float32 array with
one row per face: ``x1, y1, x2, y2, score`` in pixels of the input image, sorted by score, and an
empty ``(0, 5)`` array when there is no face. Detectors that find facial landmarks (YuNet, CenterFace)
also have ``detect_with_landmarks(image_bgr)``: the same boxes, and an ``(N, 10)`` float32 array of
five (x, y) points per face: right eye, left eye, nose tip, right and left mouth corner.

Each class keeps its defaults in its `__init__` and its named settings in `PRESETS`;
`maskmodel.detect.detector_config.DetectorConfig` chooses one and builds it from the zoo's files (CenterFace
lives in `maskmodel.detect.centerface`).
"""

from __future__ import annotations

import os
from typing import Protocol

import cv2
import numpy as np

from maskmodel.classify.crops import resize_image
from maskmodel.detect.boxes import (MIN_DETECTION_SIDE, NO_FACES, NO_LANDMARKS, merge_passes, mirror_boxes,
                                    mirror_landmarks, nms_indices)
from maskmodel.runtime.backends import open_network, resolve_backend
from maskmodel.runtime.opencv import require


class FaceDetector(Protocol):
    """What the pipeline needs from a face detector. The classes here also name, in `REQUIRES`, the
    OpenCV capabilities (`maskmodel.runtime.opencv`) they need beyond reading their model files."""

    name: str

    def detect(self, image: np.ndarray) -> np.ndarray: ...


class YuNetDetector:
    """OpenCV Zoo YuNet (`cv2.FaceDetectorYN`), optionally run at several image scales.

    Args:
        model_path: the YuNet `.onnx` file.
        scales: longer image side, in pixels, of each detection pass; `None` in the list means the
            native size. Boxes of all passes are merged by NMS. Defaults to `(640, 1024)`: the second
            pass, with the image enlarged to 1024 px, finds many of the small faces of crowd photos
            that one pass at 640 px misses (docs/benchmarks.md).
        score_threshold: minimum face score. Defaults to `0.6`.
        nms_threshold: IoU above which overlapping boxes are merged. Defaults to `0.3`.
        flip: also detect in the mirrored image at each scale (twice the work; finds more turned and
            partly hidden faces). Defaults to `False`.
    """

    name = "yunet"
    REQUIRES = ("face_detector_yn",)
    # Named settings (`DetectorConfig.preset`), measured in docs/benchmarks.md. The accuracy preset (about
    # 3x slower) finds more faces at the default's precision; with its threshold lowered to 0.3 it ranks
    # better, but most extra boxes are wrong.
    PRESETS = {
        "fast": {"scales": (320,)},
        "speed": {"scales": (640,)},
        "accuracy": {"scales": (640, 1024, 1600), "flip": True, "score_threshold": 0.7, "nms_threshold": 0.5},
    }

    def __init__(
        self,
        model_path: str | os.PathLike,
        scales: tuple[int | None, ...] = (640, 1024),
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        flip: bool = False,
    ) -> None:
        self.scales = scales
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.flip = flip
        require("face_detector_yn", "The YuNet face detector")
        self._net = cv2.FaceDetectorYN.create(
            str(model_path), "", (320, 320), score_threshold, nms_threshold, 5000
        )

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_with_landmarks(image)[0]

    def detect_with_landmarks(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes as `detect`, and `(N, 10)` landmarks: (x, y) of right eye, left eye, nose tip, right and
        left mouth corner. Several passes are merged by NMS, each box keeping its own landmarks."""
        passes = [self._detect_at(image, scale) for scale in self.scales]
        if self.flip:
            mirrored = np.ascontiguousarray(image[:, ::-1])
            width = image.shape[1]
            passes += [(mirror_boxes(boxes, width), mirror_landmarks(landmarks, width))
                       for boxes, landmarks in (self._detect_at(mirrored, scale) for scale in self.scales)]
        return merge_passes(passes, self.nms_threshold, "nms")

    def _detect_at(self, image: np.ndarray, longer_side: int | None) -> tuple[np.ndarray, np.ndarray]:
        height, width = image.shape[:2]
        factor = 1.0 if longer_side is None else longer_side / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        if min(size) < MIN_DETECTION_SIDE:  # a sliver of an image holds no detectable face
            return NO_FACES, NO_LANDMARKS
        scaled = image if size == (width, height) else resize_image(image, size)
        self._net.setInputSize(size)
        _, faces = self._net.detect(scaled)
        if faces is None or len(faces) == 0:
            return NO_FACES, NO_LANDMARKS
        # YuNet rows: x, y, w, h, 5 landmark (x, y) pairs, score.
        x, y, w, h, score = faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 3], faces[:, 14]
        boxes = np.column_stack([x, y, x + w, y + h]) / factor
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return np.column_stack([boxes, score]).astype(np.float32), (faces[:, 4:14] / factor).astype(np.float32)


class SSDDetector:
    """OpenCV's ResNet-10 SSD face detector (the seed design's "res10"), from its ONNX conversion.

    The zoo's default version is one ONNX file (`maskmodel.training.ssd_onnx` made it from OpenCV's
    TensorFlow graph: same boxes, 8-bit weights kept) that outputs decoded boxes and face scores; this
    class applies the NMS that OpenCV's `DetectionOutput` layer did. Version 1.0.0, the TensorFlow graph
    (`.pb` + `.pbtxt`), runs only where OpenCV still has its TensorFlow importer (before 5.1).

    Args:
        model_path: the `.onnx` file, or `opencv_face_detector_uint8.pb`.
        config_path: `opencv_face_detector.pbtxt`, for the `.pb` only.
        input_size: network input side. Defaults to `300`.
        score_threshold: minimum face score. Defaults to `0.5`.
        backend: runtime of the ONNX file (`maskmodel.runtime.open_network`); the `.pb` runs on `cv2.dnn`.
            Defaults to `"auto"`.
        precision: `"auto"`, `"fp32"` or `"bf16"` (see `maskmodel.runtime.backends`). Defaults to `"auto"`.
    """

    name = "ssd"
    REQUIRES = ()
    NMS_IOU = 0.45  # the IoU of the DetectionOutput layer of OpenCV's .pbtxt

    def __init__(
        self,
        model_path: str | os.PathLike,
        config_path: str | os.PathLike | None = None,
        input_size: int = 300,
        score_threshold: float = 0.5,
        backend: str = "auto",
        precision: str = "auto",
    ) -> None:
        self.input_size = input_size
        self.score_threshold = score_threshold
        self._onnx = config_path is None
        self.backend, self.precision = "opencv", "fp32"
        if self._onnx:
            if resolve_backend(backend) == "opencv":
                require("onnx_importer", "The SSD face detector")
            self._network = open_network(model_path, backend, precision, ("boxes", "scores"))
            self.backend, self.precision = self._network.backend, self._network.precision
        else:
            require("tensorflow_importer", "The SSD face detector's TensorFlow graph (ssd@1.0.0)")
            self._net = cv2.dnn.readNetFromTensorflow(str(model_path), str(config_path))

    def detect(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        size = (self.input_size, self.input_size)
        blob = cv2.dnn.blobFromImage(image, 1.0, size, (104.0, 177.0, 123.0), swapRB=False)
        if self._onnx:
            boxes, scores = (output[0] for output in self._network.run(blob))
        else:
            self._net.setInput(blob)
            rows = self._net.forward().reshape(-1, 7)  # OpenCV's DetectionOutput: NMS done
            boxes, scores = rows[:, 3:7], rows[:, 2]
        keep = scores >= self.score_threshold
        faces = np.column_stack([boxes[keep] * np.float32([width, height, width, height]), scores[keep]])
        if self._onnx and len(faces):
            faces = faces[nms_indices(faces, self.NMS_IOU)]
        faces[:, [0, 2]] = faces[:, [0, 2]].clip(0, width)
        faces[:, [1, 3]] = faces[:, [1, 3]].clip(0, height)
        faces = faces[(faces[:, 2] > faces[:, 0]) & (faces[:, 3] > faces[:, 1])].astype(np.float32)
        if len(faces) == 0:
            return NO_FACES
        return faces[np.argsort(-faces[:, 4], kind="stable")]


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: the offline fallback. It ships inside opencv-python 4.x and
    opencv-contrib-python; OpenCV 5's opencv-python has no cascade classifier (`REQUIRES`).

    Haar cascades give no score; every face gets score 1.0.
    """

    name = "haar"
    REQUIRES = ("cascade_classifier",)

    def __init__(self, model_path: str | os.PathLike, min_size: int = 16) -> None:
        require("cascade_classifier", "The Haar face detector")
        self.min_size = min_size
        self._cascade = cv2.CascadeClassifier(str(model_path))
        if self._cascade.empty():
            raise ValueError(f"cannot load Haar cascade {str(model_path)!r}")

    def detect(self, image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        found = self._cascade.detectMultiScale(gray, 1.1, 5, minSize=(self.min_size, self.min_size))
        if len(found) == 0:
            return NO_FACES
        x, y, w, h = np.asarray(found, dtype=np.float32).T
        return np.column_stack([x, y, x + w, y + h, np.ones_like(x)]).astype(np.float32)


def largest_face(boxes: np.ndarray, image: np.ndarray) -> tuple[tuple[float, float, float, float], bool]:
    """The largest of `boxes`, or the whole image when there is none; and whether a face was found.

    This is how a one-face-per-image dataset (training folders, classification benchmarks) turns
    into a face crop.
    """
    if not len(boxes):
        return (0.0, 0.0, float(image.shape[1]), float(image.shape[0])), False
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return tuple(float(v) for v in boxes[int(np.argmax(areas)), :4]), True
