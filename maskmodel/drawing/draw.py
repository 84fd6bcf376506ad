"""Annotated copies: boxes coloured by label, captions laid out by `maskmodel.drawing.labels` (never
overlapping each other), a legend with counts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from maskmodel.drawing.labels import (
    AUTO_BESIDE,
    AUTO_CAPTIONED,
    AUTO_FACE_MAX,
    AUTO_FACTORS,
    AUTO_MAX_SIDE,
    AUTO_MIN_SCALE,
    DEFAULT_STYLE,
    FONT,
    Label,
    LabelStyle,
    class_tags,
    label_mode,
    layout_labels,
    line_width,
    text_box,
)


class FaceLike(Protocol):
    """What drawing reads of a face: its box in image pixels and its label. `maskmodel.results.Face` is
    one (a frozen dataclass, which `label_layout` copies with `dataclasses.replace`); drawing needs no
    other part of maskmodel, so the results can draw themselves (`Detections.plot`)."""

    @property
    def box(self) -> tuple[float, float, float, float]: ...

    @property
    def label(self) -> str: ...


COLOURS = {"with_mask": (60, 180, 60), "without_mask": (40, 40, 220), "mask_incorrect": (0, 200, 255)}  # BGR
PALETTE = ((255, 140, 0), (200, 60, 200), (0, 160, 160), (120, 120, 255), (160, 100, 40), (90, 200, 200))


def colour(label: str, classes: list[str]) -> tuple[int, int, int]:
    """The BGR colour of a class: fixed for the known ones, from `PALETTE` by class position otherwise."""
    if label in COLOURS:
        return COLOURS[label]
    others = [name for name in classes if name not in COLOURS]
    index = others.index(label) if label in others else len(others)
    return PALETTE[index % len(PALETTE)]


def _ink(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on `background` (BGR)."""
    b, g, r = background
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 150 else (255, 255, 255)


def blur_faces(image: np.ndarray, faces: list[FaceLike]) -> np.ndarray:
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


def draw_faces(image: np.ndarray, faces: list[FaceLike], classes: list[str], blur: bool = False,
               prefixes: list[str] | None = None, style: LabelStyle = DEFAULT_STYLE) -> np.ndarray:
    """An annotated copy of `image`: one box per face, captions (after their prefix, such as a track
    id) placed so that none overlaps another or the legend, a legend with counts. With `style.enlarge`
    > 1 the copy is that many times larger than `image`, so captions of tiny faces stay legible; with
    `"auto"` (the default) as large as the captions need (`maskmodel.drawing.labels.auto_enlarge`)."""
    out = blur_faces(image, faces) if blur else image.copy()
    style = replace(style, enlarge=auto_enlarge(image.shape, faces, classes, style, prefixes))
    if style.enlarge != 1:
        out = cv2.resize(out, None, fx=style.enlarge, fy=style.enlarge, interpolation=cv2.INTER_CUBIC)
    faces, classes, labels, scale, legend = label_layout(out.shape, faces, classes, style, prefixes)
    for face in faces:
        box = np.array(face.box)
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour(face.label, classes), line_width(style, box, out.shape))
    _draw_legend(out, legend, classes)
    for label in labels:  # leader lines first: no line crosses a caption
        if label.detached:
            _leader(out, label.rect, faces[label.face].box, colour(faces[label.face].label, classes))
    for label in labels:
        fill = colour(faces[label.face].label, classes)
        x1, y1, x2, y2 = label.rect
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), fill, cv2.FILLED)
        base = text_box(label.text, scale)[2]
        cv2.putText(out, label.text, (x1 + 2, y2 - base - 1), FONT, scale, _ink(fill), 1, cv2.LINE_AA)
    return out


def auto_enlarge(image_shape: tuple[int, ...], faces: list[FaceLike], classes: list[str], style: LabelStyle,
                 prefixes: list[str] | None = None) -> float:
    """The canvas factor `draw_faces` uses: `style.enlarge`, or for `"auto"` the smallest of
    `AUTO_FACTORS` (canvas sides within `AUTO_MAX_SIDE` px, the median face within `AUTO_FACE_MAX`
    px) at which the captions are legible (font scale `AUTO_MIN_SCALE` or more, or the one given),
    `AUTO_CAPTIONED` of the faces get a caption and `AUTO_BESIDE` of them one right beside their box;
    else the smallest at which legible captions reach `AUTO_CAPTIONED` of the faces (faces crowded
    together leave no side free at any size); else the one that captions the most.

    Captions never cover a face box, so on a small photo of many small faces many would be left out
    or pushed away from their faces, and those placed would be too small to read (font scale 0.3 on a
    400-px photo: text about 7 px high): on a larger canvas the faces grow and the captions find room."""
    if style.enlarge != "auto":
        return float(style.enlarge)
    heights = [face.box[3] - face.box[1] for face in faces]
    median = float(np.median(heights)) if heights else 0.0
    captioned, most, most_count = None, 1.0, -1
    for factor in AUTO_FACTORS:
        if factor > 1 and (max(image_shape[:2]) * factor > AUTO_MAX_SIDE or median * factor > AUTO_FACE_MAX):
            break
        canvas = (round(image_shape[0] * factor), round(image_shape[1] * factor), *image_shape[2:])
        _, _, labels, scale, _ = label_layout(canvas, faces, classes, replace(style, enlarge=factor), prefixes)
        legible = scale >= AUTO_MIN_SCALE or style.font_scale is not None  # a font scale given is the user's
        if legible and len(labels) >= AUTO_CAPTIONED * len(faces):
            if sum(not label.detached for label in labels) >= AUTO_BESIDE * len(faces):
                return factor
            captioned = factor if captioned is None else captioned
        if len(labels) > most_count:
            most, most_count = factor, len(labels)
    return most if captioned is None else captioned


def label_layout(canvas_shape: tuple[int, ...], faces: list[FaceLike], classes: list[str], style: LabelStyle,
                 prefixes: list[str] | None = None) -> tuple[list[FaceLike], list[str], list[Label], float, Legend]:
    """What `draw_faces` draws on a canvas of `canvas_shape` (the image enlarged by `style.enlarge`):
    the faces in canvas pixels, the classes (unknown labels appended), the placed captions, their
    font scale and the legend (`style.enlarge` a number: see `auto_enlarge`)."""
    if style.enlarge == "auto":
        raise ValueError("Expected a number for style.enlarge (auto_enlarge gives it). Received: enlarge='auto'")
    if style.enlarge != 1:
        faces = [replace(f, box=tuple(v * style.enlarge for v in f.box)) for f in faces]
    classes = list(classes) + sorted({f.label for f in faces} - set(classes))
    boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
    tags = class_tags(classes) if label_mode(style, boxes) == "short" else None
    legend = _legend(canvas_shape, faces, classes, tags)
    labels, scale = layout_labels(faces, classes, canvas_shape, style, prefixes, [legend.rect])
    if tags is None and any(label.short for label in labels):  # the legend says what the tags mean
        legend = _legend(canvas_shape, faces, classes, class_tags(classes))
        labels, scale = layout_labels(faces, classes, canvas_shape, style, prefixes, [legend.rect])
    return faces, classes, labels, scale, legend


def _leader(image: np.ndarray, rect: tuple[int, int, int, int], box: tuple[float, ...], fill) -> None:
    """A thin line from a detached label to the nearest point of its face box."""
    x1, y1, x2, y2 = rect
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    px, py = float(np.clip(cx, box[0], box[2])), float(np.clip(cy, box[1], box[3]))
    lx, ly = float(np.clip(px, x1, x2 - 1)), float(np.clip(py, y1, y2 - 1))
    cv2.line(image, (int(lx), int(ly)), (int(px), int(py)), fill, 1, cv2.LINE_AA)


@dataclass(frozen=True)
class Legend:
    """The legend panel: its rectangle, font scale, and one text line per class."""

    rect: tuple[int, int, int, int]
    scale: float
    lines: list[str]


def _legend(canvas_shape: tuple[int, ...], faces: list[FaceLike], classes: list[str], tags: dict[str, str] | None
            ) -> Legend:
    """Class colours (and short-label tags) with face counts, in the corner that covers the least face
    area (top left when none does)."""
    scale = float(np.clip(max(canvas_shape[:2]) / 1200, 0.35, 1.2))
    lines = [f"{tags[name] + ' ' if tags else ''}{name}: {sum(face.label == name for face in faces)}"
             for name in classes]
    (text_w, text_h), base = cv2.getTextSize(max(lines, key=len), FONT, scale, 1)
    step = text_h + base + 6
    width, height = min(text_w + step + 12, canvas_shape[1]), min(step * len(lines) + 6, canvas_shape[0])
    right, bottom = canvas_shape[1] - width, canvas_shape[0] - height
    corners = [(0, 0), (right, 0), (0, bottom), (right, bottom)]
    boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
    rects = np.array([(x, y, x + width, y + height) for x, y in corners], dtype=np.float64)
    covered = [float(np.sum(np.clip(np.minimum(r[2], boxes[:, 2]) - np.maximum(r[0], boxes[:, 0]), 0, None)
                            * np.clip(np.minimum(r[3], boxes[:, 3]) - np.maximum(r[1], boxes[:, 1]), 0, None)))
               for r in rects]
    x, y = corners[int(np.argmin(covered))]
    return Legend((x, y, x + width, y + height), scale, lines)


def _draw_legend(image: np.ndarray, legend: Legend, classes: list[str]) -> None:
    """The legend on a dark panel."""
    x1, y1, x2, y2 = legend.rect
    region = image[y1:y2, x1:x2]
    region[:] = (region * 0.35).astype(image.dtype)
    (_, text_h), _ = cv2.getTextSize("Mg", FONT, legend.scale, 1)
    step = (y2 - y1 - 6) // len(legend.lines)
    for row, (name, text) in enumerate(zip(classes, legend.lines)):
        y = y1 + 6 + row * step
        cv2.rectangle(image, (x1 + 6, y), (x1 + 6 + text_h, y + text_h), colour(name, classes), cv2.FILLED)
        cv2.putText(image, text, (x1 + 12 + text_h, y + text_h), FONT, legend.scale, (255, 255, 255), 1, cv2.LINE_AA)
