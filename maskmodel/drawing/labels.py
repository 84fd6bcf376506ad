"""Caption layout for annotated copies: label text, sizes scaled to the faces, and placement that
never lets two labels overlap and never covers another face's box.

Each face's label is tried along the sides of its box first, then inside its box (at a corner, in the
box's top or bottom third, jutting out sideways if the box is narrower: faces that fill the photo), then
at growing distances around it (drawn with a leader line); the free spot nearest the box wins among the
first kind that has one. A spot
is free when it touches no other label and no other face box, and, outside the box, not its own box.
A label with no free spot in reach is left out (its box and colour still say the class), so faces stay
visible on crowd photos. Faces are placed largest first, on their drawn (whole-pixel) boxes. With
`enlarge="auto"` (the default) a photo whose captions would not fit or be too small to read is drawn on a larger
canvas (`maskmodel.drawing.draw.auto_enlarge`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_MODES = ("auto", "full", "short", "none")
SHORT_BELOW = 32  # px: `auto` uses short labels when the median face is smaller than this
KNOWN_TAGS = {"with_mask": "M", "without_mask": "X", "mask_incorrect": "I"}
REACH = 6  # how far (in steps of a label height) a label may move away from its face
SLIDES = 9  # positions tried along each side of a box
INSIDE_SHARE = 1 / 3  # a caption inside its box may cover at most this share of the box height ...
INSIDE_WIDER = 2.0  # ... and be at most this many times as wide as the box (the rest juts out sideways)
ADJACENT, INSIDE, DETACHED = 0, 1, 2  # kinds of spot, in order of preference
GAP = 1  # px kept free between two labels
AUTO_FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0)  # canvas factors `enlarge="auto"` tries, smallest first
AUTO_MAX_SIDE = 1600  # px: `enlarge="auto"` never makes a canvas side longer than this ...
AUTO_FACE_MAX = 64  # px: ... nor the median face larger than this (enlarging is for small faces)
AUTO_CAPTIONED = 0.9  # share of faces `enlarge="auto"` wants captioned ...
AUTO_BESIDE = 2 / 3  # ... and captioned right beside their box (no leader line) ...
AUTO_MIN_SCALE = 0.5  # ... in captions of at least this font scale (text about 12 px high: legible at 100 % zoom)


@dataclass(frozen=True)
class LabelStyle:
    """How annotated copies are drawn.

    Args:
        labels: `full` (class name and confidence), `short` (a one-letter tag), `none`, or `auto`
            (short when the median face is under `SHORT_BELOW` px high). Defaults to `auto`.
        conf: show the class probability. Defaults to `True`.
        line_width: box line width in px; `None` scales it to the face and image size.
        font_scale: OpenCV font scale; `None` scales it to the faces and the image.
        enlarge: draw on a canvas this many times larger than the image (for tiny faces), 1 to 8, or
            `"auto"`: as much as the captions need (`maskmodel.drawing.draw.auto_enlarge`). Defaults to
            `"auto"`; drawings that must keep the image size (videos, `watch`, `Detections.plot`) use 1.
    """

    labels: str = "auto"
    conf: bool = True
    line_width: int | None = None
    font_scale: float | None = None
    enlarge: float | str = "auto"

    def __post_init__(self) -> None:
        if self.labels not in LABEL_MODES:
            raise ValueError(f"Expected labels in {LABEL_MODES}. Received: labels={self.labels!r}")
        if self.enlarge != "auto" and (isinstance(self.enlarge, str) or not 1 <= self.enlarge <= 8):
            raise ValueError(f"Expected 1 <= enlarge <= 8. Received: enlarge={self.enlarge!r}")


DEFAULT_STYLE = LabelStyle()


@dataclass(frozen=True)
class Label:
    """One placed caption: the face it names, its text, background rectangle (x1, y1, x2, y2),
    whether it sits away from the box (drawn with a leader line) and whether it is the short caption
    that replaced a full one with no room (the legend then lists the tags)."""

    face: int
    text: str
    rect: tuple[int, int, int, int]
    detached: bool
    short: bool = False


def class_tags(classes: list[str]) -> dict[str, str]:
    """A distinct one-letter tag per class: M, X, I for the known classes, else the first free letter
    of the name (then any free letter)."""
    tags: dict[str, str] = {}
    for name in classes:
        options = [KNOWN_TAGS.get(name, "")] + [c.upper() for c in name if c.isalnum()] + list("ABCDEFGHJKLNOPQRSTUVWYZ")
        tags[name] = next((t for t in options if t and t not in tags.values()), "?")
    return tags


def label_mode(style: LabelStyle, boxes: np.ndarray) -> str:
    """The label mode to draw with (`auto` resolved by the median face height in px of the photo:
    `boxes` are on the canvas, `style.enlarge` times larger)."""
    if style.labels != "auto":
        return style.labels
    if len(boxes) == 0:
        return "full"
    factor = 1.0 if style.enlarge == "auto" else float(style.enlarge)
    return "short" if float(np.median(boxes[:, 3] - boxes[:, 1])) / factor < SHORT_BELOW else "full"


def font_scale(style: LabelStyle, boxes: np.ndarray, image_shape: tuple[int, ...]) -> float:
    """One font scale for an image: about a third of the median face height, within limits set by the
    image size (legible on small images, not huge on large ones)."""
    if style.font_scale is not None:
        return style.font_scale
    longest = max(image_shape[:2])
    low, high = float(np.clip(longest / 1600, 0.3, 0.5)), float(np.clip(longest / 1000, 0.5, 1.2))
    if len(boxes) == 0:
        return low
    return float(np.clip(np.median(boxes[:, 3] - boxes[:, 1]) / 60, low, high))


def line_width(style: LabelStyle, box: np.ndarray, image_shape: tuple[int, ...]) -> int:
    """Box line width: grows with the face (1 px up to a 75 px face, 4 px at 175 px), so that a large
    face's box stays visible; `image_shape` is the canvas drawn on (its faces are in its pixels)."""
    if style.line_width is not None:
        return style.line_width
    return int(max(1, round(min(box[2] - box[0], box[3] - box[1]) / 50)))


def caption(label: str, probability: float, mode: str, conf: bool, tags: dict[str, str], prefix: str = "") -> str:
    """The caption text of one face in `mode` (`full` or `short`)."""
    if mode == "short":
        text = tags.get(label, "?") + (f" {probability:.2f}".replace(" 0.", " .") if conf else "")
    else:
        text = label + (f" {probability:.2f}" if conf else "")
    return f"{prefix} {text}" if prefix else text


def text_box(text: str, scale: float) -> tuple[int, int, int]:
    """(width, height, baseline) of a caption's background at `scale`, padding included."""
    (width, height), base = cv2.getTextSize(text, FONT, scale, 1)
    return width + 4, height + base + 3, base


def place_labels(boxes: np.ndarray, sizes: list[tuple[int, int] | None], image_size: tuple[int, int],
                 reserved: list[tuple[int, int, int, int]] = ()) -> list[tuple[tuple[int, int, int, int], bool] | None]:
    """A rectangle for each face's label (`sizes`: width, height; None for a face whose box is only an
    obstacle), or None where none is free.

    No two rectangles overlap, none overlaps a `reserved` one (the legend) or another face's box, one
    outside its own box does not cover that box either, and all lie inside the image (`image_size`:
    width, height). Boxes are compared as drawn, rounded to whole pixels. Faces are placed largest
    first; a label prefers a side of its box, then a corner inside it, then the nearest free spot.

    Returns:
        Per face: ((x1, y1, x2, y2), detached) or None.
    """
    width, height = image_size
    faces = np.round(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    placed = np.array(reserved, dtype=np.float64).reshape(-1, 4)
    result: list[tuple[tuple[int, int, int, int], bool] | None] = [None] * len(faces)
    order = np.argsort(-(faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]), kind="stable")
    for index in order:
        if sizes[index] is None or sizes[index][0] > width or sizes[index][1] > height:
            continue
        w, h = sizes[index]
        candidates, kind = _candidates(faces[index], w, h)
        candidates = np.round(candidates)  # whole pixels, as drawn
        candidates[:, 0] = np.clip(candidates[:, 0], 0, width - w)
        candidates[:, 1] = np.clip(candidates[:, 1], 0, height - h)
        rects = np.column_stack([candidates, candidates + [w, h]])
        reach = np.concatenate([rects[:, :2].min(axis=0) - GAP, rects[:, 2:].max(axis=0) + GAP])
        others = np.delete(faces, index, axis=0)
        free = ~(_overlap(rects, _near(placed, reach), GAP) > 0).any(axis=1)
        free &= ~(_overlap(rects, _near(others, reach), 0) > 0).any(axis=1)  # no other face box is covered
        free &= (kind == INSIDE) | (_overlap(rects, faces[index:index + 1], 0)[:, 0] == 0)
        if not free.any():
            continue
        centre = faces[index].reshape(2, 2).mean(axis=0)
        distance = np.hypot(*(rects.reshape(-1, 2, 2).mean(axis=1) - centre).T)
        cost = kind * (distance.max() + 1) + distance  # the nearest spot of the most preferred kind
        cost[~free] = np.inf
        best = int(np.argmin(cost))
        rect = rects[best].astype(int)
        placed = np.vstack([placed, rect])
        result[index] = (tuple(int(v) for v in rect), not _touches(rect, faces[index]))  # pushed off: a leader line
    return result


def _candidates(box: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners to try and the kind of each: along the sides of the box (`ADJACENT`), its
    corners inside it when the label is low enough (`INSIDE`; it may be wider than the box), then a
    grid around it (`DETACHED`) whose steps grow with the box, so that it reaches `REACH` label heights
    beyond the box of any size."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    sides = [(x1, y1 - h), (x2 - w, y1 - h), (cx - w / 2, y1 - h), (x1, y2), (x2 - w, y2), (cx - w / 2, y2),
             (x2, y1), (x1 - w, y1), (x2, y2 - h), (x1 - w, y2 - h)]
    along_x, along_y = np.linspace(x1 - w, x2, SLIDES), np.linspace(y1 - h, y2, SLIDES)
    sides += [(x, y) for x in along_x for y in (y1 - h, y2)] + [(x, y) for y in along_y for x in (x2, x1 - w)]
    fits_inside = w <= INSIDE_WIDER * (x2 - x1) and h <= INSIDE_SHARE * (y2 - y1)
    inside = [(x1, y1), (x2 - w, y1), (x1, y2 - h), (x2 - w, y2 - h)] if fits_inside else []
    steps = np.arange(-REACH, REACH + 1, dtype=np.float64)
    step_x = min(w / 2, 1.5 * h) + (x2 - x1) / (2 * REACH)
    step_y = h + (y2 - y1) / (2 * REACH)
    dy, dx = np.meshgrid(steps, steps, indexing="ij")  # row by row, as the ranking's tie-break expects
    grid = np.column_stack([cx - w / 2 + dx.ravel() * step_x, cy - h / 2 + dy.ravel() * step_y])
    points = np.vstack([np.array(sides + inside, dtype=np.float64), grid])
    kind = np.full(len(points), DETACHED)
    kind[:len(sides)] = ADJACENT
    kind[len(sides):len(sides) + len(inside)] = INSIDE
    return points, kind


def _near(rects: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The rectangles that reach into `region` (x1, y1, x2, y2): the only ones a candidate can touch."""
    keep = (rects[:, 0] < region[2]) & (rects[:, 2] > region[0]) & (rects[:, 1] < region[3]) & (rects[:, 3] > region[1])
    return rects[keep]


def _overlap(rects: np.ndarray, others: np.ndarray, gap: int) -> np.ndarray:
    """Intersection areas (len(rects), len(others)), with `gap` px added around `others`."""
    if len(others) == 0:
        return np.zeros((len(rects), 0))
    w = np.minimum(rects[:, None, 2], others[None, :, 2] + gap) - np.maximum(rects[:, None, 0], others[None, :, 0] - gap)
    h = np.minimum(rects[:, None, 3], others[None, :, 3] + gap) - np.maximum(rects[:, None, 1], others[None, :, 1] - gap)
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _touches(rect: np.ndarray, box: np.ndarray) -> bool:
    """Whether a label rectangle touches or overlaps its face box (no leader line needed)."""
    return bool(rect[0] <= box[2] + 1 and rect[2] >= box[0] - 1 and rect[1] <= box[3] + 1 and rect[3] >= box[1] - 1)


def layout_labels(faces: list, classes: list[str], image_shape: tuple[int, ...], style: LabelStyle,
                  prefixes: list[str] | None = None, reserved: list[tuple[int, int, int, int]] = ()
                  ) -> tuple[list[Label], float]:
    """The placed captions of an image's faces (`maskmodel.pipeline.Face`, boxes in the pixels of the
    canvas being drawn), kept off the `reserved` rectangles, and the font scale they use.

    In `full` mode a face whose caption finds no free spot gets its short caption (`Label.short`)
    where that one fits: a face filling a small photo leaves no room for a class name beside it."""
    boxes = np.array([face.box for face in faces], dtype=np.float64).reshape(-1, 4)
    mode = label_mode(style, boxes)
    scale = font_scale(style, boxes, image_shape)
    if mode == "none" and not prefixes:
        return [], scale
    tags = class_tags(list(classes) + [f.label for f in faces if f.label not in classes])

    def texts(text_mode: str) -> list[str]:
        return [caption(face.label, face.probabilities.get(face.label, face.score), text_mode, style.conf, tags,
                        prefixes[i] if prefixes else "") if text_mode != "none" else prefixes[i]
                for i, face in enumerate(faces)]

    first = texts(mode)
    spots = place_labels(boxes, [text_box(text, scale)[:2] for text in first], (image_shape[1], image_shape[0]), reserved)
    labels = [Label(i, first[i], spot[0], spot[1]) for i, spot in enumerate(spots) if spot is not None]
    if mode != "full" or len(labels) == len(faces):
        return labels, scale
    short = texts("short")
    sizes = [None if spot is not None else text_box(short[i], scale)[:2] for i, spot in enumerate(spots)]
    taken = [*reserved, *(label.rect for label in labels)]
    second = place_labels(boxes, sizes, (image_shape[1], image_shape[0]), taken)
    labels += [Label(i, short[i], spot[0], spot[1], short=True) for i, spot in enumerate(second) if spot is not None]
    return sorted(labels, key=lambda label: label.face), scale
