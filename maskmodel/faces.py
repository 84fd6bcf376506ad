"""Face detectors behind one small interface.

Every detector has ``detect(image_bgr) -> np.ndarray`` returning an ``(N, 5)`` float32 array with
one row per face: ``x1, y1, x2, y2, score`` in pixels of the input image, sorted by score, and an
empty ``(0, 5)`` array when there is no face.
"""

from __future__ import annotations

import os
from typing import Protocol

import cv2
import numpy as np

from maskmodel.crops import resize_image

NO_FACES = np.zeros((0, 5), dtype=np.float32)


class FaceDetector(Protocol):
    """What the pipeline needs from a face detector."""

    name: str

    def detect(self, image: np.ndarray) -> np.ndarray: ...


def non_max_suppression(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Keep the best-scoring of overlapping `(N, 5)` boxes; result sorted by score."""
    if len(boxes) == 0:
        return NO_FACES
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]]).tolist()
    keep = cv2.dnn.NMSBoxes(xywh, boxes[:, 4].tolist(), 0.0, iou_threshold)
    kept = boxes[np.asarray(keep, dtype=int).reshape(-1)]
    return kept[np.argsort(-kept[:, 4])].astype(np.float32)


class YuNetDetector:
    """OpenCV Zoo YuNet (`cv2.FaceDetectorYN`), optionally run at several image scales.

    Args:
        model_path: the YuNet `.onnx` file.
        scales: longer image side, in pixels, of each detection pass; `None` in the list means the
            native size. Boxes of all passes are merged by NMS. Defaults to `(640,)`.
        score_threshold: minimum face score. Defaults to `0.6`.
        nms_threshold: IoU above which overlapping boxes are merged. Defaults to `0.3`.
    """

    name = "yunet"

    def __init__(
        self,
        model_path: str | os.PathLike,
        scales: tuple[int | None, ...] = (640,),
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
    ) -> None:
        self.scales = scales
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._net = cv2.FaceDetectorYN.create(
            str(model_path), "", (320, 320), score_threshold, nms_threshold, 5000
        )

    def detect(self, image: np.ndarray) -> np.ndarray:
        passes = [self._detect_at(image, scale) for scale in self.scales]
        boxes = np.concatenate(passes) if passes else NO_FACES
        if len(self.scales) > 1:
            return non_max_suppression(boxes, self.nms_threshold)
        return boxes[np.argsort(-boxes[:, 4])] if len(boxes) else NO_FACES

    def _detect_at(self, image: np.ndarray, longer_side: int | None) -> np.ndarray:
        height, width = image.shape[:2]
        factor = 1.0 if longer_side is None else longer_side / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        scaled = image if size == (width, height) else resize_image(image, size)
        self._net.setInputSize(size)
        _, faces = self._net.detect(scaled)
        if faces is None or len(faces) == 0:
            return NO_FACES
        # YuNet rows: x, y, w, h, 5 landmark (x, y) pairs, score.
        x, y, w, h, score = faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 3], faces[:, 14]
        boxes = np.column_stack([x, y, x + w, y + h]) / factor
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return np.column_stack([boxes, score]).astype(np.float32)
