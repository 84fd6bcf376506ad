"""The one face-crop function shared by training, evaluation and the runtime.

A face box becomes a classifier input in two steps, both defined only here:

1. :func:`expand_box` grows the detector box by a margin on every side and, by default, makes it
   square around its centre (faces from different detectors then look alike to the classifier);
2. :func:`crop_face` cuts that square out of the image (pixels outside the image are filled by
   replicating the border) and resizes it with :func:`resize_image`.

:func:`resize_image` is the single resize rule of the project: area interpolation when shrinking,
bilinear when enlarging. Crowd faces are ~23 px and get enlarged; enlarging them one way in
training and another way at inference costs a lot of accuracy, so nothing else resizes crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskmodel.errors import UsageError
from maskmodel.zoo.schema import MAX_CROP_MARGIN

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


@dataclass(frozen=True)
class CropPolicy:
    """How a face box becomes a classifier input.

    Attributes:
        margin: fraction of the box size added on every side. Defaults to `0.2`.
        square: expand the shorter side so the crop is square. Defaults to `True`.
    """

    margin: float = 0.2
    square: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.margin <= MAX_CROP_MARGIN:  # also false for nan
            raise UsageError(f"Expected a crop margin in [0, {MAX_CROP_MARGIN}]. Received: margin={self.margin!r}")

    def to_dict(self) -> dict:
        return {"margin": self.margin, "square": self.square}

    @classmethod
    def from_dict(cls, data: dict) -> CropPolicy:
        return cls(margin=float(data["margin"]), square=bool(data["square"]))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize `image` to `size` (width, height): area when shrinking, bilinear when enlarging."""
    height, width = image.shape[:2]
    shrinking = size[0] * size[1] < width * height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def expand_box(box: Box, policy: CropPolicy) -> tuple[int, int, int, int]:
    """Grow `box` by the policy's margin (and make it square); returns integer x1, y1, x2, y2."""
    x1, y1, x2, y2 = box
    width, height = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    if policy.square:
        width = height = max(width, height)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half_w = width * (0.5 + policy.margin)
    half_h = height * (0.5 + policy.margin)
    left, top = int(round(cx - half_w)), int(round(cy - half_h))
    # at least one pixel: round-half-to-even can give a 1 px box the same start and end
    return left, top, max(int(round(cx + half_w)), left + 1), max(int(round(cy + half_h)), top + 1)


def crop_face(image: np.ndarray, box: Box, policy: CropPolicy, size: int) -> np.ndarray:
    """Cut the face at `box` out of `image` as a `size` x `size` crop, following `policy`.

    Args:
        image: H x W x C array (any channel order; it is kept).
        box: face box (x1, y1, x2, y2) in pixels of `image`.
        policy: margin and squareness of the crop.
        size: side of the returned square crop in pixels.

    Returns:
        A `size` x `size` x C array of the same dtype as `image`.
    """
    x1, y1, x2, y2 = expand_box(box, policy)
    height, width = image.shape[:2]
    pad_left, pad_top = max(0, -x1), max(0, -y1)
    pad_right, pad_bottom = max(0, x2 - width), max(0, y2 - height)
    region = image[max(0, y1) : min(height, y2), max(0, x1) : min(width, x2)]
    if region.size == 0:
        raise ValueError(f"Expected a box that overlaps the image. Received: box={box}")
    if pad_left or pad_top or pad_right or pad_bottom:
        region = cv2.copyMakeBorder(
            region, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE
        )
    return resize_image(region, (size, size))
