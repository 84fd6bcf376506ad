"""Annotated copies: boxes coloured by label, label + probability scaled to the face, a legend."""

from __future__ import annotations

import cv2
import numpy as np

from maskmodel.pipeline import Face

COLOURS = {"with_mask": (60, 180, 60), "without_mask": (40, 40, 220), "mask_incorrect": (200, 60, 200)}  # BGR
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


def draw_faces(image: np.ndarray, faces: list[Face], classes: list[str], blur: bool = False,
               prefixes: list[str] | None = None) -> np.ndarray:
    """An annotated copy of `image`: one box and caption per face (after its prefix, such as a track
    id), a legend with counts."""
    out = blur_faces(image, faces) if blur else image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    for index, face in enumerate(faces):
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        colour = _colour(face.label)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        caption = f"{face.label} {face.probabilities[face.label]:.2f}"
        if prefixes:
            caption = f"{prefixes[index]} {caption}"
        scale = float(np.clip((x2 - x1) / 200, 0.3, 0.8))
        (text_w, text_h), base = cv2.getTextSize(caption, FONT, scale, 1)
        left = int(np.clip(x1, 0, max(0, out.shape[1] - text_w)))
        top = y1 - text_h - base if y1 - text_h - base >= 0 else min(y2, out.shape[0] - text_h - base)
        cv2.rectangle(out, (left, top), (left + text_w, top + text_h + base), colour, cv2.FILLED)
        cv2.putText(out, caption, (left, top + text_h), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    _legend(out, faces, classes)
    return out


def _legend(image: np.ndarray, faces: list[Face], classes: list[str]) -> None:
    """Class colours and face counts on a dark panel in the top-left corner."""
    scale = float(np.clip(max(image.shape[:2]) / 1200, 0.4, 1.2))
    lines = [f"{name}: {sum(face.label == name for face in faces)}" for name in classes]
    (text_w, text_h), base = cv2.getTextSize(max(lines, key=len), FONT, scale, 1)
    step = text_h + base + 6
    panel_w, panel_h = text_w + step + 12, step * len(lines) + 6
    region = image[:panel_h, :panel_w]
    region[:] = (region * 0.35).astype(image.dtype)
    for row, (name, text) in enumerate(zip(classes, lines)):
        y = 6 + row * step
        cv2.rectangle(image, (6, y), (6 + text_h, y + text_h), _colour(name), cv2.FILLED)
        cv2.putText(image, text, (12 + text_h, y + text_h), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
