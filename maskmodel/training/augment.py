"""Augmentation for real photos, applied to the cached context crops.

A context crop (see `data.detector_crop`) holds the face with a wide margin. `runtime_crop` cuts the
exact crop the runtime would take out of it; `augment` cuts a jittered one (scale, shift, rotation)
and adds flips, colour jitter, blur, JPEG artefacts and **low-resolution simulation**: the crop is
shrunk to 12-48 px and enlarged again with the project's one resize rule, which is what happens at
inference to the ~23 px faces of a crowd photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskmodel.classify.crops import CropPolicy, resize_image
from maskmodel.training.data import CONTEXT_MARGIN


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation."""

    scale: tuple[float, float] = (0.85, 1.2)
    shift: float = 0.12
    rotation_degrees: float = 12.0
    flip: float = 0.5
    colour: float = 0.8
    low_resolution: float = 0.6
    low_resolution_px: tuple[int, int] = (8, 48)
    blur: float = 0.3
    jpeg: float = 0.3
    grayscale: float = 0.05
    occluder: float = 0.25


def _crop_side(context: np.ndarray, policy: CropPolicy) -> float:
    """Side, in context-crop pixels, of the crop that `policy` takes at runtime."""
    return context.shape[0] * (1 + 2 * policy.margin) / (1 + 2 * CONTEXT_MARGIN)


def runtime_crop(context: np.ndarray, policy: CropPolicy, size: int) -> np.ndarray:
    """The crop the runtime would take (same margin, centred), resized by the one resize rule."""
    side = _crop_side(context, policy)
    start = int(round((context.shape[0] - side) / 2))
    end = start + int(round(side))
    return resize_image(context[start:end, start:end], (size, size))


def augment(
    context: np.ndarray,
    policy: CropPolicy,
    size: int,
    rng: np.random.Generator,
    config: AugmentConfig = AugmentConfig(),
    occluders: np.ndarray | None = None,
) -> np.ndarray:
    """A randomly augmented `size` x `size` RGB crop of the face in `context`.

    `occluders` (other context crops) are pasted over an edge of the crop now and then, the way a
    head in front of a face cuts into it in a crowd photo; the label does not change.
    """
    side = _crop_side(context, policy) * rng.uniform(*config.scale)
    centre = context.shape[0] / 2 + rng.uniform(-config.shift, config.shift, 2) * side
    angle = rng.uniform(-config.rotation_degrees, config.rotation_degrees)
    out_side = int(round(side))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
    matrix[:, 2] += out_side / 2 - centre
    crop = cv2.warpAffine(
        context, matrix, (out_side, out_side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if rng.random() < config.flip:
        crop = crop[:, ::-1]
    if occluders is not None and len(occluders) and rng.random() < config.occluder:
        crop = _occlude(np.ascontiguousarray(crop), occluders[rng.integers(len(occluders))], rng)
    if rng.random() < config.low_resolution:
        low = int(rng.integers(config.low_resolution_px[0], config.low_resolution_px[1] + 1))
        crop = resize_image(crop, (low, low))
    if rng.random() < config.blur:
        crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.4, 2.0))
    crop = resize_image(np.ascontiguousarray(crop), (size, size))
    if rng.random() < config.colour:
        crop = _colour_jitter(crop, rng)
    if rng.random() < config.grayscale:
        crop = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if rng.random() < config.jpeg:
        quality = int(rng.integers(25, 90))
        _, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
        crop = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return crop


def _occlude(crop: np.ndarray, occluder: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paste `occluder`, shrunk to 40-80 % of the crop, so it covers 15-35 % of one edge (not the top)."""
    side = crop.shape[0]
    patch = resize_image(occluder, (int(side * rng.uniform(0.4, 0.8)),) * 2)
    depth = int(side * rng.uniform(0.15, 0.35))
    along = int(rng.integers(0, side - patch.shape[0] + 1))
    edge = rng.integers(3)  # bottom, left, right
    out = crop.copy()
    if edge == 0:
        out[side - depth :, along : along + patch.shape[1]] = patch[:depth]
    elif edge == 1:
        out[along : along + patch.shape[0], :depth] = patch[:, -depth:]
    else:
        out[along : along + patch.shape[0], side - depth :] = patch[:, :depth]
    return out


def _colour_jitter(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness (down to dim indoor light), gamma, contrast and saturation."""
    image = crop.astype(np.float32)
    image = 255.0 * (image / 255.0) ** rng.uniform(0.7, 1.8)
    image = image * rng.uniform(0.45, 1.3) + rng.uniform(-25, 25)
    mean = image.mean()
    image = (image - mean) * rng.uniform(0.7, 1.3) + mean
    gray = image.mean(axis=2, keepdims=True)
    image = (image - gray) * rng.uniform(0.6, 1.4) + gray
    return np.clip(image, 0, 255).astype(np.uint8)
