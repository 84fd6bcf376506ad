"""`MaskDetector`: a face detector and the mask classifier → one `Face` record per face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskmodel.boxstyle import BOX_STYLES, BoxAdjust
from maskmodel.classifier import MaskClassifier
from maskmodel.faces import DEFAULT_FACE_DETECTOR, FaceDetector, create_face_detector

from maskmodel.zoo import DEFAULT_CLASSIFIER


@dataclass(frozen=True)
class Face:
    """One detected face: its box in image pixels, detector score, label and class probabilities."""

    box: tuple[float, float, float, float]
    score: float
    label: str
    probabilities: dict[str, float]


class MaskDetector:
    """Find every face in a BGR image and classify it `with_mask` / `without_mask`.

    Args:
        face_detector: `"centerface"` (default), `"yunet"`, `"ssd"`, `"haar"`, or any object with
            `detect(image) -> (N, 5) array` and a `name`.
        model: zoo name of the classifier (`name@version` accepted), or a `MaskClassifier`.
        backend: classifier backend when `model` is a name (`"auto"`, `"opencv"`, `"onnxruntime"`).
        box_adjust: how the reported boxes are moved and scaled from the detector's (see
            `maskmodel.boxstyle`); `None` takes the detector's default box style (`BOX_STYLES`).
            The classifier always crops the detector's own box.
        **detector_options: passed to the face detector (for example `score_threshold=`).
    """

    def __init__(
        self,
        face_detector: str | FaceDetector = DEFAULT_FACE_DETECTOR,
        model: str | MaskClassifier = DEFAULT_CLASSIFIER,
        backend: str = "auto",
        box_adjust: BoxAdjust | None = None,
        **detector_options: object,
    ) -> None:
        from maskmodel import load, model_info

        if isinstance(face_detector, str):
            face_detector = create_face_detector(face_detector, **detector_options)
        self.face_detector = face_detector
        self.box_adjust = BOX_STYLES.get(face_detector.name, BoxAdjust()) if box_adjust is None else box_adjust
        if isinstance(model, str):
            info = model_info(model)
            self.model_name = f"{info['name']}@{info['version']}"
            model = load(self.model_name, backend=backend)
        else:
            self.model_name = "custom"
        self.classifier = model
        self.classes = list(model.contract.classes)

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces of one BGR image, classified together (batches of up to `MAX_BATCH` crops), sorted by
        detector score."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """`detect` over several images; the faces of all images are classified together."""
        boxes = [self.face_detector.detect(image) for image in images]
        crops = [c for image, b in zip(images, boxes) for c in self.classifier.crops(image, b[:, :4])]
        probabilities = iter(self.classifier.predict_crops(crops))
        return [[self._face(row, next(probabilities)) for row in self._reported(image_boxes, image.shape)]
                for image, image_boxes in zip(images, boxes)]

    def _reported(self, boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The detector's boxes in the reported box style, clipped to the image."""
        reported = self.box_adjust.apply(boxes)
        reported[:, [0, 2]] = reported[:, [0, 2]].clip(0, shape[1])
        reported[:, [1, 3]] = reported[:, [1, 3]].clip(0, shape[0])
        return reported

    def _face(self, row: np.ndarray, probabilities: np.ndarray) -> Face:
        return Face(
            box=tuple(float(v) for v in row[:4]),
            score=float(row[4]),
            label=self.classes[int(np.argmax(probabilities))],
            probabilities={name: float(p) for name, p in zip(self.classes, probabilities)},
        )
