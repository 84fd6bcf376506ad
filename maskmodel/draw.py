"""Annotated copies: boxes coloured by label, label + probability scaled to the face, a legend."""

from __future__ import annotations

import cv2
import numpy as np

from maskmodel.pipeline import Face

COLOURS = {"with_mask": (60, 180, 60), "without_mask": (40, 40, 220)}  # BGR
OTHER_COLOUR = (0, 200, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _colour(label: str) -> tuple[int, int, int]:
    return COLOURS.get(label, OTHER_COLOUR)


def blur_faces(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of `image` with every face box strongly blurred (privacy-safe output)."""
    out = image.copy()
    height, width = image.shape[:2]
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
        if x2 > x1 and y2 > y1:
            kernel = max(3, (max(x2 - x1, y2 - y1) // 3) | 1)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(out[y1:y2, x1:x2], (kernel, kernel), 0)
    return out


def draw_faces(image: np.ndarray, faces: list[Face], classes: list[str], blur: bool = False) -> np.ndarray:
    """An annotated copy of `image`: one box and caption per face, a legend with counts."""
    out = blur_faces(image, faces) if blur else image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        colour = _colour(face.label)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        caption = f"{face.label} {face.probabilities[face.label]:.2f}"
        scale = float(np.clip((x2 - x1) / 120, 0.3, 1.2))
        (text_w, text_h), base = cv2.getTextSize(caption, FONT, scale, 1)
        top = y1 - text_h - base if y1 - text_h - base >= 0 else y2
        cv2.rectangle(out, (x1, top), (x1 + text_w, top + text_h + base), colour, cv2.FILLED)
        cv2.putText(out, caption, (x1, top + text_h), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    _legend(out, faces, classes)
    return out


def _legend(image: np.ndarray, faces: list[Face], classes: list[str]) -> None:
    scale = float(np.clip(max(image.shape[:2]) / 1000, 0.4, 1.5))
    line = int(24 * scale) + 4
    for row, name in enumerate(classes):
        count = sum(face.label == name for face in faces)
        y = 6 + row * line
        cv2.rectangle(image, (6, y), (6 + line - 6, y + line - 6), _colour(name), cv2.FILLED)
        text = f"{name}: {count}"
        origin = (12 + line, y + line - 10)
        cv2.putText(image, text, origin, FONT, scale * 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, text, origin, FONT, scale * 0.6, (255, 255, 255), 1, cv2.LINE_AA)
