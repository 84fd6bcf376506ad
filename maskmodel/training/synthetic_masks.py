"""Synthetic masks on real faces, placed from the five landmarks CenterFace returns.

Two sources of mask pixels:
- a template (`mask_templates/`: five of MaskTheFace's frontal masks, MIT, with their six anchor points:
  a/b/c along the top edge, d/e/f along the bottom), tinted to a random colour;
- a real mask, cut from a photo of a masked face along the same six anchors placed on that face.

Either is warped by a homography from its anchors to anchors placed on the target face, at one of four
placements: over the nose (worn right), low on the nose but still over its tip (worn right: a hard
example), below the nose tip (worn wrong) or on the chin only (worn wrong). The pasted mask takes the
target's lighting, colour cast, sharpness and noise. Faces are the context crops of the training data
(`data.CONTEXT_SIZE` square, RGB); the augmentation later cuts the runtime crop from them and downscales it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

TEMPLATES = Path(__file__).parent / "mask_templates"
ANCHOR_NAMES = "abcdef"
# Where the top of the mask sits, as a fraction of the eye-to-mouth distance below the eyes, per placement
# (`nose` is the nose tip's own fraction on that face): (label, low, high). Worn wrong starts just under the
# tip (ilc-2021 labels a mask at the nostrils `mask_incorrect`); worn right stays 0.18 above it.
PLACEMENTS = {
    "over_nose": ("with_mask", lambda nose: 0.22, lambda nose: 0.34),
    "low_on_nose": ("with_mask", lambda nose: 0.36, lambda nose: nose - 0.18),
    "below_nose": ("mask_incorrect", lambda nose: nose + 0.02, lambda nose: nose + 0.18),
    "chin": ("mask_incorrect", lambda nose: 1.12, lambda nose: 1.3),
}
# Mask colours (RGB) for the tinted templates: light blue, white, black, navy, grey, pink, teal, beige.
COLOURS = np.array([[150, 190, 225], [235, 235, 235], [35, 35, 38], [40, 50, 90], [140, 140, 145],
                    [225, 170, 185], [120, 190, 180], [200, 180, 150]], dtype=np.float32)
TINTED = ("surgical", "cloth")
# Anchors a-f of a mask in the mask's own frame (x across, y down), for masks cut from photos.
STANDARD_LAYOUT = np.array([[-1.0, 0.08], [0.0, 0.0], [1.0, 0.08], [-0.85, 0.72], [0.0, 1.0], [0.85, 0.72]])


@dataclass(frozen=True)
class FaceFrame:
    """A face's frame from its five landmarks: eye centre, downward unit axis, rightward unit axis, the
    eye-to-mouth distance, the eye distance, and the nose tip's place along the downward axis (a fraction of
    the eye-to-mouth distance) and across (a fraction of the eye distance)."""

    eyes: np.ndarray
    down: np.ndarray
    right: np.ndarray
    height: float
    width: float
    nose_down: float
    nose_across: float

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceFrame:
        points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
        eyes, mouth, nose = points[:2].mean(0), points[3:].mean(0), points[2]
        height = float(np.linalg.norm(mouth - eyes))
        down = (mouth - eyes) / max(height, 1e-6)
        right = np.array([down[1], -down[0]])
        width = abs(float(np.dot(points[1] - points[0], right)))
        return cls(eyes, down, right, height, width, float(np.dot(nose - eyes, down)) / max(height, 1e-6),
                   float(np.dot(nose - eyes, right)) / max(width, 1e-6))

    def anchors(self, top: float, layout: np.ndarray | None = None) -> np.ndarray:
        """The six anchor points (a-f) of a mask whose top centre (b) is `top` eye-to-mouth distances below
        the eyes, laid out as `layout` (a mask's own anchors: `STANDARD_LAYOUT` by default) scaled to the
        face: 2.3 eye distances wide and 1.45 eye-to-mouth distances from b to e. The mask keeps its size
        wherever it sits (a mask pulled down hangs under the chin). The centre line follows the nose, and
        the side the face turns away from is narrower."""
        layout = STANDARD_LAYOUT if layout is None else np.asarray(layout, dtype=np.float64)
        turn = float(np.clip(self.nose_across, -0.45, 0.45))
        centre = self.eyes + self.right * turn * self.width * 0.8 + self.down * top * self.height
        across = (layout[:, 0] - layout[1, 0]) / (layout[2, 0] - layout[0, 0])  # -0.5 .. 0.5 of the width
        down = (layout[:, 1] - layout[1, 1]) / (layout[4, 1] - layout[1, 1])  # 0 at b, 1 at e
        across = across * 2 * self.width * np.where(across < 0, 1.15 + 1.2 * turn, 1.15 - 1.2 * turn)
        points = centre + np.outer(down * 1.45 * self.height, self.down) + np.outer(across, self.right)
        return points.astype(np.float32)

    def top_for(self, placement: str, rng: np.random.Generator) -> float:
        """A random top edge within `placement`'s range on this face."""
        _, low, high = PLACEMENTS[placement]
        low_value, high_value = low(self.nose_down), high(self.nose_down)
        return float(rng.uniform(low_value, max(low_value, high_value)))


@cache
def template_names() -> tuple[str, ...]:
    """The templates in `mask_templates/`, by name."""
    return tuple(sorted(json.loads((TEMPLATES / "anchors.json").read_text())))


@cache
def load_template(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A template as RGBA float32 (0-1) and its six anchors (x, y)."""
    anchors = json.loads((TEMPLATES / "anchors.json").read_text())[name]
    image = cv2.imread(str(TEMPLATES / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    rgba = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA).astype(np.float32) / 255
    return rgba, np.array([anchors[n] for n in ANCHOR_NAMES], dtype=np.float32)


def tinted_template(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A template, its surgical or cloth mask recoloured to a random colour (its shading kept)."""
    rgba, anchors = load_template(name)
    if name not in TINTED:
        return rgba, anchors
    shading = rgba[..., :3].mean(-1, keepdims=True)
    opaque = rgba[..., 3] > 0.5
    shading = shading / max(float(shading[opaque].mean()), 1e-3)
    colour = COLOURS[rng.integers(len(COLOURS))] * rng.uniform(0.85, 1.1, 3).astype(np.float32) / 255
    recoloured = np.clip(shading * colour, 0, 1)
    return np.concatenate([recoloured, rgba[..., 3:]], axis=-1), anchors


def _skin_luminance(face: np.ndarray, frame: FaceFrame) -> float:
    """Mean luminance (0-1) of the cheeks and nose bridge, between the eyes and the nose tip."""
    centre = frame.eyes + frame.down * frame.height * 0.3
    half = max(2, int(frame.width * 0.6))
    x, y = int(centre[0]), int(centre[1])
    patch = face[max(0, y - half // 2): y + half // 2, max(0, x - half): x + half]
    return float(patch.mean()) / 255 if patch.size else 0.5


def _detail(grey: np.ndarray, where: np.ndarray) -> float:
    """Variance of the Laplacian of `grey` (float, 0-1) over the pixels `where` is true: how sharp it is."""
    return float(cv2.Laplacian(grey, cv2.CV_32F)[where].var()) if where.any() else 0.0


def paste(face: np.ndarray, rgba: np.ndarray, source_anchors: np.ndarray, target_anchors: np.ndarray,
          brightness: float, rng: np.random.Generator) -> np.ndarray:
    """`rgba` (float 0-1) warped from `source_anchors` onto `target_anchors` of `face` (RGB uint8), scaled
    by `brightness`, given the face's colour cast, low-frequency shading, sharpness and noise, and blended
    with feathered edges."""
    height, width = face.shape[:2]
    homography, _ = cv2.findHomography(source_anchors, target_anchors, 0)
    if homography is None:
        raise ValueError("Expected anchors in general position. Received: degenerate anchors")
    warped = cv2.warpPerspective(rgba, homography, (width, height), flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3]
    inside = cv2.erode((alpha > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if not inside.any():
        raise ValueError("Expected the mask to land on the image. Received: anchors outside it")
    face_f = face.astype(np.float32) / 255
    cast = face_f.reshape(-1, 3).mean(0)
    cast = (cast / max(float(cast.mean()), 1e-3)) ** 0.5
    grey = cv2.cvtColor(face_f, cv2.COLOR_RGB2GRAY)
    shading = cv2.GaussianBlur(grey, (0, 0), max(2.0, width / 12))
    shading = (shading / max(float(shading.mean()), 1e-3)) ** 0.6
    colour = np.clip(warped[..., :3] * brightness * cast * shading[..., None], 0, 1)
    wanted = _detail(grey, inside)  # the face's own sharpness where the mask goes
    for sigma in (0.0, 0.7, 1.2, 2.0, 3.0, 4.5):  # the least blur that makes the mask no sharper than that
        blurred = colour if sigma == 0 else cv2.GaussianBlur(colour, (0, 0), sigma)
        if _detail(cv2.cvtColor(blurred, cv2.COLOR_RGB2GRAY), inside) <= 1.5 * wanted:
            break
    noise = float(np.std((grey - cv2.GaussianBlur(grey, (0, 0), 1.0))[inside]))
    blurred = blurred + rng.normal(0, noise, blurred.shape).astype(np.float32)
    feathered = cv2.GaussianBlur(alpha, (0, 0), max(0.6, width / 300))[..., None]
    blended = face_f * (1 - feathered) + np.clip(blurred, 0, 1) * feathered
    return np.clip(blended * 255 + 0.5, 0, 255).astype(np.uint8)


def template_mask(face: np.ndarray, landmarks: np.ndarray, placement: str,
                  rng: np.random.Generator) -> np.ndarray:
    """`face` with a random template mask at `placement` (see `PLACEMENTS`)."""
    frame = FaceFrame.from_landmarks(landmarks)
    rgba, anchors = tinted_template(template_names()[rng.integers(len(template_names()))], rng)
    brightness = float(np.clip(_skin_luminance(face, frame) / 0.55, 0.3, 1.25)) * rng.uniform(0.9, 1.1)
    return paste(face, rgba, anchors, frame.anchors(frame.top_for(placement, rng), anchors), brightness, rng)


def real_mask(face: np.ndarray, landmarks: np.ndarray, masked: np.ndarray, masked_landmarks: np.ndarray,
              placement: str, rng: np.random.Generator) -> np.ndarray:
    """`face` with the real mask of another photo (`masked`, a face wearing it over the nose) moved onto it
    at `placement`: the region inside the mask's anchors on `masked`, shrunk a little so that no background
    comes along, lit as the target's skin is lit relative to the source's."""
    source, target = FaceFrame.from_landmarks(masked_landmarks), FaceFrame.from_landmarks(landmarks)
    source_anchors = source.anchors(0.28)
    centre = source_anchors.mean(0)
    inner = centre + (source_anchors - centre) * 0.85
    alpha = np.zeros(masked.shape[:2], np.float32)
    cv2.fillPoly(alpha, [np.round(inner[[0, 1, 2, 5, 4, 3]]).astype(np.int32)], 1.0)
    rgba = np.concatenate([masked.astype(np.float32) / 255, alpha[..., None]], axis=-1)
    brightness = float(np.clip(_skin_luminance(face, target) / max(_skin_luminance(masked, source), 0.05),
                               0.5, 1.6))
    return paste(face, rgba, source_anchors, target.anchors(target.top_for(placement, rng)), brightness, rng)


def plausible_landmarks(landmarks: np.ndarray, size: int) -> bool:
    """Whether five landmarks describe an upright-enough face of a usable size inside a `size` square crop:
    eyes above the nose above the mouth, a face at least a tenth of the crop, turned less than about 60
    degrees."""
    frame = FaceFrame.from_landmarks(landmarks)
    return (frame.height > size / 20 and frame.width > size / 30 and abs(frame.down[1]) > 0.7
            and 0.2 < frame.nose_down < 0.95 and abs(frame.nose_across) < 0.6)
