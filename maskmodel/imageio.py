"""Robust image decoding, and encoding for the annotated copies.

Every image the project reads goes through :func:`read_image`: bytes are read by Python (so non-ASCII
names work on every platform), the size is checked against a pixel limit before decoding, and OpenCV
decodes to 8-bit BGR with EXIF orientation applied (grayscale, RGBA, palette and 16-bit images are
converted).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

DEFAULT_MAX_PIXELS = 200_000_000


class ImageReadError(Exception):
    """An input file could not be decoded as an image; the message says why."""


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read `path` as an 8-bit BGR image.

    Args:
        path: image file (any format OpenCV decodes: JPEG, PNG, BMP, WebP, TIFF, ...).
        max_pixels: refuse images whose header declares more pixels than this
            (decompression bombs). Defaults to `DEFAULT_MAX_PIXELS`.

    Returns:
        H x W x 3 uint8 array in BGR order.

    Raises:
        ImageReadError: the file is missing, unreadable, not an image, too large or truncated.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise ImageReadError(f"cannot read file: {error}") from error
    return decode_image(data, max_pixels)


def decode_image(data: np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (a uint8 array) as `read_image` does; raises `ImageReadError`."""
    if data.size == 0:
        raise ImageReadError("empty file (0 bytes)")
    shape = _declared_shape(data)
    if shape is not None and shape[0] * shape[1] > max_pixels:
        raise ImageReadError(
            f"image declares {shape[1]}x{shape[0]} pixels, more than the limit of {max_pixels}"
        )
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise ImageReadError(f"cannot decode image: {error.msg.strip()}") from error
    if image is None:
        raise ImageReadError("not a decodable image (unknown format or corrupt data)")
    return image


def _declared_shape(data: np.ndarray) -> tuple[int, int] | None:
    """Height and width from a PNG, JPEG or BMP header, without decoding (None if unknown)."""
    head = data[:32].tobytes()
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if head.startswith(b"BM") and len(head) >= 26:
        width = int.from_bytes(head[18:22], "little", signed=True)
        height = int.from_bytes(head[22:26], "little", signed=True)
        return abs(height), abs(width)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_shape(data.tobytes())
    return None


def _jpeg_shape(blob: bytes) -> tuple[int, int] | None:
    """Walk JPEG markers up to the first start-of-frame and read its height and width."""
    offset = 2
    while offset + 9 < len(blob):
        if blob[offset] != 0xFF:
            return None
        marker = blob[offset + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            offset += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(blob[offset + 2 : offset + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(blob[offset + 5 : offset + 7], "big")
            width = int.from_bytes(blob[offset + 7 : offset + 9], "big")
            return height, width
        offset += 2 + length
    return None


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """`image` encoded in the format of a file suffix (`.jpg`, `.png`, ...)."""
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise OSError(f"cannot encode an image as {suffix!r}")
    return encoded.tobytes()
