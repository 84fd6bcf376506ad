"""Robust image decoding, and encoding for the annotated copies.

Every image the project reads goes through :func:`read_image`: bytes are read by Python (so non-ASCII
names work on every platform; only regular files are read), the size declared by the header is checked
against a pixel limit before decoding (a file whose size cannot be read is refused), and OpenCV
decodes to 8-bit BGR with EXIF orientation applied (grayscale, RGBA, palette and 16-bit images are
converted).
"""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np

DEFAULT_MAX_PIXELS = 200_000_000
HEAD_BYTES = 1 << 20  # read first: the header, and enough to tell a file far larger than its pixels
FILE_SLACK = 64 << 20
ImageLike = "str | os.PathLike | np.ndarray | PIL.Image.Image"  # what `as_bgr` accepts
# A second fence behind the header check: OpenCV's own limit, read once when cv2 is first imported
# (annotate's worker processes get the run's --max-pixels).
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_MAX_PIXELS))

import cv2  # noqa: E402

from maskmodel.io.imagesize import declared_size  # noqa: E402
from maskmodel.runtime.files import UnreadableFileError, regular_file_handle  # noqa: E402


class ImageReadError(Exception):
    """An input file could not be decoded as an image; the message says why."""


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read `path` as an 8-bit BGR image.

    Args:
        path: image file (PNG, JPEG, BMP, GIF (first frame), WebP, TIFF, PBM/PGM/PPM, JPEG 2000).
        max_pixels: refuse images whose header declares more pixels than this
            (decompression bombs). Defaults to `DEFAULT_MAX_PIXELS`.

    Returns:
        H x W x 3 uint8 array in BGR order.

    Raises:
        ImageReadError: the file is missing, unreadable, not a regular file, not an image, of a size
            its header does not tell, too large or truncated.
    """
    return decode_image(np.frombuffer(read_file(path), dtype=np.uint8), max_pixels)


def file_budget(height: int, width: int) -> int:
    """The most bytes an image file of `height` x `width` pixels may have: 32 bytes a pixel (16-bit RGBA
    uncompressed is 8) and 64 MB of metadata, far above any real photo's."""
    return FILE_SLACK + 32 * height * width


def read_file(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file. Anything else (a FIFO, a device, a directory) is refused without
    blocking: it is opened non-blocking and checked before any read. A file far larger than the pixels its
    header declares (`file_budget`: padding, a payload behind a small image) is refused after its first
    `HEAD_BYTES`, before the rest is read."""
    try:
        handle = regular_file_handle(path)
    except UnreadableFileError as error:
        raise ImageReadError(str(error)) from error
    with os.fdopen(handle, "rb") as stream:
        try:
            return read_stream(stream, os.fstat(handle).st_size)
        except OSError as error:
            raise ImageReadError(f"cannot read file: {error.strerror or error}") from error


def read_stream(stream: BinaryIO, size: int) -> bytes:
    """The bytes of an open image file of `size` bytes (a local file, or one in a folder URI), refused
    (`ImageReadError`) after its first `HEAD_BYTES` when far larger than the pixels its header declares."""
    head = stream.read(HEAD_BYTES)
    shape = declared_size(head)
    if shape is not None and size > file_budget(*shape):
        raise ImageReadError(f"{size} bytes, far more than its {shape[1]}x{shape[0]} pixels need (at most "
                             f"{file_budget(*shape)}): padding or data behind the image")
    return head + stream.read()


def decode_image(data: np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (a uint8 array) as `read_image` does; raises `ImageReadError`.

    The header must declare the image size (`maskmodel.io.imagesize`) before anything is decoded.
    """
    if data.size == 0:
        raise ImageReadError("empty file (0 bytes)")
    shape = declared_size(data.tobytes())
    if shape is None:
        raise ImageReadError("not a recognised image (unknown format, or a header that does not give the size)")
    if shape[0] * shape[1] > max_pixels:
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


class ImageWriteError(Exception):
    """An annotated image could not be encoded (too large for the format, ...): a failure of that
    image only."""


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """`image` encoded in the format of a file suffix (`.jpg`, `.png`, ...); raises `ImageWriteError`."""
    try:
        ok, encoded = cv2.imencode(suffix, image)
    except cv2.error as error:
        raise ImageWriteError(f"cannot encode a {image.shape[1]}x{image.shape[0]} image as {suffix}: "
                              f"{error.msg.strip()}") from None
    if not ok:
        raise ImageWriteError(f"cannot encode a {image.shape[1]}x{image.shape[0]} image as {suffix}")
    return encoded.tobytes()


def as_bgr(image: ImageLike, color: str = "bgr") -> np.ndarray:
    """An 8-bit BGR array from a path, a PIL image, or an array (grayscale, 3 channels in `color`
    order, or 4 with alpha)."""
    if color not in ("bgr", "rgb"):
        raise ValueError(f"Expected color 'bgr' or 'rgb'. Received: color={color!r}")
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if not isinstance(image, np.ndarray) and hasattr(image, "convert"):  # a PIL image
        image, color = np.asarray(image.convert("RGB")), "rgb"
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"Expected an 8-bit image (uint8). Received: dtype={image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"Expected an H x W, H x W x 3 or H x W x 4 image. Received: shape={image.shape}")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR if color == "rgb" else cv2.COLOR_BGRA2BGR)
    return image[:, :, ::-1].copy() if color == "rgb" else image
