"""A generator of hostile input files (no binary fixtures): every kind of file a photo archive holds."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from helpers import CROWD_DEV

PHOTO = CROWD_DEV / "images" / "maksssksksss148.png"


def png_header_bomb(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` pixels, with almost no data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def encode(suffix: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def make_hostile_folder(root: Path) -> dict[str, str]:
    """Fill `root`; returns relative path -> expected status (`ok`, `no_face` or `error`)."""
    root.mkdir(parents=True, exist_ok=True)
    photo = PHOTO.read_bytes()
    jpeg = encode(".jpg", cv2.imread(str(PHOTO)))
    files = {
        "photo.png": (photo, "ok"),
        "truncated.jpg": (jpeg[: len(jpeg) // 3], "error"),
        "truncated.png": (photo[: len(photo) // 3], "error"),
        "zero.jpg": (b"", "error"),
        "page.jpg": (b"<!DOCTYPE html><html><body>Not an image</body></html>", "error"),
        "jpeg named.png": (jpeg, "ok"),
        "deep16.png": (encode(".png", np.full((60, 80, 3), 40000, np.uint16)), "no_face"),
        "one_pixel.png": (encode(".png", np.zeros((1, 1, 3), np.uint8)), "no_face"),
        "sliver.png": (encode(".png", np.zeros((1, 10000, 3), np.uint8)), "no_face"),
        "bomb.png": (png_header_bomb(100_000, 100_000), "error"),
        "ñandú 顔.png": (photo, "ok"),
        "a,b \"quoted\".png": (photo, "ok"),
        "new\nline.png": (photo, "ok"),
        "folder.jpg/inside.png": (photo, "ok"),
    }
    try:
        from PIL import Image

        rgb = Image.open(PHOTO).convert("RGB")
        for name, mode, fmt in (("cmyk.jpg", "CMYK", "JPEG"), ("palette.png", "P", "PNG")):
            rgb.convert(mode).save(root / name, fmt)
            files[name] = (None, "ok")
    except ImportError:  # Pillow comes with the [train] extra; the other cases still run
        pass
    expected = {}
    for name, (data, status) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        expected[name] = status
    (root / "dangling.jpg").symlink_to(root / "missing.jpg")
    expected["dangling.jpg"] = "error"
    (root / "folder.jpg" / "loop").symlink_to(root, target_is_directory=True)
    undecodable = os.fsencode(root) + b"/caf\xe9.png"
    with open(undecodable, "wb") as stream:
        stream.write(photo)
    expected["caf\\xe9.png"] = "ok"
    return expected
