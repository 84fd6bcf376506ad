"""`MaskDetector`: a face detector and the mask classifier → `Detections` of `Face` records
(`Face` is re-exported here for existing imports)."""

from __future__ import annotations

import numpy as np

from maskmodel.detect.boxstyle import BoxAdjust
from maskmodel.runtime.opencv import quiet_opencv
from maskmodel.classify.classifier import MaskClassifier
from maskmodel.detect.detector_config import DEFAULT_FACE_DETECTOR, DetectorConfig
from maskmodel.detect.faces import FaceDetector
from maskmodel.io.imageio import ImageLike, as_bgr
from maskmodel.zoo.local_models import is_local_model, model_record
from maskmodel.results import Detections, Face
from maskmodel.loading import load
from maskmodel.zoo.registry import DEFAULT_CLASSIFIER, ModelNotFoundError, ModelVersion, list_models, model_info


class MaskDetector:
    """Find every face in an image and classify it `with_mask` / `without_mask`.

    Args:
        face_detector: a `DetectorConfig`, a detector's short name (`"centerface"`, the default,
            `"yunet"`, `"ssd"`, `"haar"`), or any object with `detect(image) -> (N, 5) array` and a `name`.
        model: zoo name of the classifier (`name@version` accepted), a model you trained (its run
            directory or `.onnx`), or a `MaskClassifier`.
        backend: runtime of the ONNX networks, the classifier (when `model` is a name) and the face
            detector (when given by name or `DetectorConfig`; CenterFace and the SSD run ONNX): `"auto"`
            (the fastest installed, see `maskmodel.runtime.backends`), `"opencv"`, `"onnxruntime"`,
            `"openvino"`.
        precision: `"auto"` (the face detector in bf16 on OpenVINO where the CPU has it, else fp32; the classifier in
            fp32), `"fp32"` or `"bf16"`.
        box_adjust: how the reported boxes are moved and scaled from the detector's (see
            `maskmodel.detect.boxstyle`); `None` reports the detector's own boxes.
            The classifier always crops the detector's own box.
        **detector_settings: with a short name, `DetectorConfig` settings (for example `score_threshold=`).
    """

    def __init__(
        self,
        face_detector: str | DetectorConfig | FaceDetector = DEFAULT_FACE_DETECTOR,
        model: str | MaskClassifier = DEFAULT_CLASSIFIER,
        backend: str = "auto",
        box_adjust: BoxAdjust | None = None,
        precision: str = "auto",
        **detector_settings: object,
    ) -> None:
        if isinstance(face_detector, str):
            face_detector = DetectorConfig(face_detector, **detector_settings)
        elif detector_settings:
            raise ValueError("Expected detector settings only with a detector's short name. Received: "
                             f"{sorted(detector_settings)} with face_detector={face_detector!r}")
        if isinstance(model, str):
            info = classifier_info(model)
            self.model_name = info.name if info.version == "local" else info.spec
            with quiet_opencv():
                model = load(self.model_name, backend=backend, precision=precision)
        else:
            self.model_name = "custom"
        if isinstance(face_detector, DetectorConfig):
            with quiet_opencv():
                face_detector = face_detector.build(backend, precision)
        self.face_detector = face_detector
        self.box_adjust = BoxAdjust() if box_adjust is None else box_adjust
        self.classifier = model
        self.classes = list(model.contract.classes)

    def detect(self, image: ImageLike, color: str = "bgr") -> Detections:
        """All faces of one image, classified together (in batches of the runtime's best size), sorted by
        detector score.

        Args:
            image: a file path, a NumPy array (8-bit; grayscale, 3 channels in `color` order, or 4 with
                alpha) or a PIL image.
            color: channel order of a 3- or 4-channel array: `"bgr"` (OpenCV's, the default) or `"rgb"`
                (PIL, matplotlib, most other libraries).
        """
        return self.detect_batch([image], color)[0]

    def detect_batch(self, images: list[ImageLike], color: str = "bgr") -> list[Detections]:
        """`detect` over several images; the faces of all images are classified together. Faces get
        `landmarks` when the face detector finds them (it has `detect_with_landmarks`)."""
        images = [as_bgr(image, color) for image in images]
        with_landmarks = getattr(self.face_detector, "detect_with_landmarks", None)
        found = [with_landmarks(image) if with_landmarks else (self.face_detector.detect(image), None)
                 for image in images]
        crops = [c for image, (boxes, _) in zip(images, found) for c in self.classifier.crops(image, boxes[:, :4])]
        probabilities = iter(self.classifier.predict_crops(crops))
        detections = []
        for image, (boxes, landmarks) in zip(images, found):
            points = [None] * len(boxes) if landmarks is None else landmarks
            faces = [self._face(row, next(probabilities), marks)
                     for row, marks in zip(self._reported(boxes, image.shape), points)]
            detections.append(Detections(faces, self.classes, image))
        return detections

    def _reported(self, boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The detector's boxes in the reported box style, clipped to the image."""
        reported = self.box_adjust.apply(boxes)
        reported[:, [0, 2]] = reported[:, [0, 2]].clip(0, shape[1])
        reported[:, [1, 3]] = reported[:, [1, 3]].clip(0, shape[0])
        return reported

    def _face(self, row: np.ndarray, probabilities: np.ndarray, landmarks: np.ndarray | None = None) -> Face:
        return Face(
            box=tuple(float(v) for v in row[:4]),
            score=float(row[4]),
            label=self.classes[int(np.argmax(probabilities))],
            probabilities={name: float(p) for name, p in zip(self.classes, probabilities)},
            landmarks=None if landmarks is None else tuple((float(x), float(y)) for x, y in landmarks.reshape(-1, 2)),
        )


def classifier_info(model: str) -> ModelVersion:
    """The record of a mask classifier: a zoo name (`name@version`) or a model you trained (a run
    directory or `.onnx`); raises `ModelNotFoundError` for anything else (a face detector, say)."""
    info = model_record(model) if is_local_model(model) else model_info(model)
    if info.task != "classification":
        raise ModelNotFoundError(f"{model} is a {info.task} model, not a mask classifier. Mask classifiers: "
                                 f"{', '.join(list_models('classification'))}, or a run directory of `maskmodel train`")
    return info


