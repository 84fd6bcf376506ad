"""What `MaskDetector.detect` returns: `Face` records, and `Detections`, the faces of one image with the
array views, exports and drawing that users of detection libraries expect (ultralytics `Results`,
supervision `Detections`); and what `annotate`'s workers return for one input file: an `ImageResult`
(`maskmodel.outputs.report` renders it as CSV rows)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from maskmodel.drawing.draw import draw_faces
from maskmodel.drawing.labels import LabelStyle

STATUS_OK, STATUS_NO_FACE, STATUS_ERROR = "ok", "no_face", "error"


@dataclass(frozen=True)
class Face:
    """One detected face: its box in image pixels, detector score, label and class probabilities.

    Attributes:
        track: in a video, the id of the track the face belongs to (`maskmodel.video.tracking`); else `None`.
        landmarks: five (x, y) points in image pixels (right eye, left eye, nose tip, right and left
            mouth corner), from detectors that find them (CenterFace, YuNet); else `None`. They are the
            detector's, not moved by the box style that moved `box`.
    """

    box: tuple[float, float, float, float]
    score: float
    label: str
    probabilities: dict[str, float]
    track: int | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None


class Frame(NamedTuple):
    """The video frame a face was seen in: its index and time in seconds."""

    index: int
    seconds: float


@dataclass(frozen=True)
class ImageResult:
    """What annotating one input file (an image or a video) gave: its faces, or why it failed.

    Attributes:
        path: the file's path relative to its input folder.
        status: `"ok"` (faces found), `"no_face"` or `"error"`.
        faces: the faces found; in a video, those of every processed frame, in frame order.
        size: width and height of the image (a video's frames); `None` for an error.
        message: why the file failed (`"error"` only).
        output: the name of the annotated copy written, if any.
        frames: for a video, the frame of each face (aligned with `faces`); `None` for an image.
        detector: the face detector's name.
        model: the classifier's name.
        crops: face crops to save, as (file name, JPEG bytes) (`annotate --save-crops`).
    """

    path: str
    status: str
    faces: tuple[Face, ...] = ()
    size: tuple[int, int] | None = None
    message: str | None = None
    output: str | None = None
    frames: tuple[Frame, ...] | None = None
    detector: str | None = None
    model: str | None = None
    crops: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    @classmethod
    def failure(cls, path: str, message: str) -> ImageResult:
        """The result of a file that could not be processed."""
        return cls(path, STATUS_ERROR, message=message)

    @classmethod
    def found(cls, path: str, faces: Sequence[Face], size: tuple[int, int], detector: str, model: str,
              output: str | None = None, frames: Sequence[Frame] | None = None,
              crops: Sequence[tuple[str, bytes]] = ()) -> ImageResult:
        """The result of a processed file: `"ok"` with its faces, or `"no_face"`."""
        return cls(path, STATUS_OK if faces else STATUS_NO_FACE, tuple(faces), tuple(size), output=output,
                   frames=None if frames is None else tuple(frames), detector=detector, model=model,
                   crops=tuple(crops))


class Detections(Sequence):
    """The faces found in one image, sorted by detector score: a sequence of `Face`, plus arrays.

    Attributes:
        faces: the `Face` records.
        classes: the classifier's class names, in its output order.
        image: the BGR image the faces were found in (for `plot`).
    """

    def __init__(self, faces: list[Face], classes: list[str], image: np.ndarray) -> None:
        self.faces = tuple(faces)
        self.classes = list(classes)
        self.image = image

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index):
        return self.faces[index]

    def __iter__(self) -> Iterator[Face]:
        return iter(self.faces)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self.faces) == list(other)

    def __repr__(self) -> str:
        return f"Detections({len(self)} faces: {', '.join(self.labels) or 'none'})"

    @property
    def xyxy(self) -> np.ndarray:
        """Boxes, `(N, 4)` float32: x1, y1, x2, y2 in pixels."""
        return np.array([f.box for f in self.faces], dtype=np.float32).reshape(-1, 4)

    @property
    def scores(self) -> np.ndarray:
        """Face detector scores, `(N,)` float32."""
        return np.array([f.score for f in self.faces], dtype=np.float32)

    @property
    def labels(self) -> list[str]:
        """Class names, one per face."""
        return [f.label for f in self.faces]

    @property
    def class_ids(self) -> np.ndarray:
        """Class indices into `classes`, `(N,)` int."""
        return np.array([self.classes.index(f.label) for f in self.faces], dtype=int)

    @property
    def probabilities(self) -> np.ndarray:
        """Class probabilities, `(N, len(classes))` float32, columns in the order of `classes`."""
        return np.array([[f.probabilities[c] for c in self.classes] for f in self.faces],
                        dtype=np.float32).reshape(-1, len(self.classes))

    def to_dict(self, decimals: int = 4) -> dict:
        """A JSON-ready record: image size and the faces (rounded as in the report)."""
        height, width = self.image.shape[:2]
        return {"width": width, "height": height, "faces": [
            {"box": [round(v, 1) for v in f.box], "score": round(f.score, decimals), "label": f.label,
             "probabilities": {k: round(v, decimals) for k, v in f.probabilities.items()}} for f in self.faces]}

    def to_json(self, **record: object) -> str:
        """`to_dict()` as one line of JSON (non-ASCII kept), with `record`'s fields first."""
        return json.dumps({**record, **self.to_dict()}, ensure_ascii=False)

    def plot(self, blur: bool = False) -> np.ndarray:
        """An annotated BGR copy of the image, of its size (as `maskmodel annotate --enlarge 1` draws it)."""
        return draw_faces(self.image, list(self.faces), self.classes, blur=blur, style=LabelStyle(enlarge=1.0))

    def to_supervision(self):
        """A `supervision.Detections` (needs the optional `supervision` package)."""
        try:
            import supervision
        except ImportError:
            raise ImportError("to_supervision() needs the supervision package: pip install supervision") from None
        return supervision.Detections(xyxy=self.xyxy, confidence=self.scores, class_id=self.class_ids,
                                      data={"class_name": np.array(self.labels, dtype=str)})
