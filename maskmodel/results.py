"""What `MaskDetector.detect` returns: `Face` records, and `Detections`, the faces of one image with the
array views, exports and drawing that users of detection libraries expect (ultralytics `Results`,
supervision `Detections`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face: its box in image pixels, detector score, label and class probabilities."""

    box: tuple[float, float, float, float]
    score: float
    label: str
    probabilities: dict[str, float]


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
        """An annotated BGR copy of the image (as `maskmodel annotate` draws it)."""
        from maskmodel.draw import draw_faces

        return draw_faces(self.image, list(self.faces), self.classes, blur=blur)

    def to_supervision(self):
        """A `supervision.Detections` (needs the optional `supervision` package)."""
        try:
            import supervision
        except ImportError:
            raise ImportError("to_supervision() needs the supervision package: pip install supervision") from None
        return supervision.Detections(xyxy=self.xyxy, confidence=self.scores, class_id=self.class_ids,
                                      data={"class_name": np.array(self.labels, dtype=str)})
