"""The image header guard (`maskmodel.io.imagesize.declared_size`) against Pillow's lazy `Image.open` (issue 41).

    python -m bench.header_guard [--out bench/results/header_guard.json]

For every format the crawler accepts, a 640x480 photo (crowd-dev's first, resized) written by OpenCV or
Pillow: the size each reader declares and the microseconds it takes (median of 200 reads of the file's
bytes held in memory), and the size OpenCV decodes. Then the hostile headers of issues 29, 35 and 41: a
TIFF declaring its size twice (12000x12000, then 16x16), a TIFF whose width is a RATIONAL, a PNG declaring
50000x50000 pixels (2.5 G, a bomb), and a 64x64 PNG followed by 64 MB: what each reader says. Prints a
Markdown table, writes the JSON.
"""

from __future__ import annotations

import argparse
import io
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

from bench import common
from maskmodel.io.imagesize import declared_size

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "WebP": ".webp", "TIFF": ".tiff", "PPM": ".ppm",
           "PGM": ".pgm", "JPEG 2000": ".jp2", "GIF": ".gif"}


def photo_bytes(image: np.ndarray, suffix: str) -> bytes:
    """`image` encoded as `suffix` (GIF by Pillow: OpenCV does not write it)."""
    if suffix == ".gif":
        from PIL import Image

        stream = io.BytesIO()
        Image.fromarray(image[..., ::-1]).save(stream, format="GIF")
        return stream.getvalue()
    if suffix == ".pgm":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.imencode(suffix, image)[1].tobytes()


def _tiff(entries: list[tuple[int, int, int]]) -> bytes:
    """A little-endian TIFF of one IFD with `entries` (tag, type, value) and a 16x16 strip of zeros."""
    pixels_at = 8 + 2 + 12 * (len(entries) + 3) + 4
    rows = [*entries, (258, 3, 8), (273, 4, pixels_at), (279, 4, 256)]
    ifd = struct.pack("<H", len(rows)) + b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in rows)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(256)


def _png_header(width: int, height: int) -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(body)) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return b"\x89PNG\r\n\x1a\n" + chunk


def hostile() -> dict[str, bytes]:
    small = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    return {
        "TIFF declaring 12000x12000, then 16x16": _tiff([(256, 4, 12000), (257, 4, 12000), (256, 3, 16), (257, 3, 16)]),
        "TIFF whose width is a RATIONAL": _tiff([(256, 5, 16), (257, 3, 16)]),
        "PNG declaring 50000x50000 (a bomb)": _png_header(50000, 50000) + small[33:],
        "64x64 PNG followed by 64 MB": small + bytes(64 << 20),
    }


def pillow_size(data: bytes) -> tuple[int, int] | str:
    """(height, width) Pillow's lazy open declares, or its error's class and first words."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size[1], image.size[0]
    except Exception as error:  # Pillow raises many types; the point is what it says
        return f"{type(error).__name__}: {str(error)[:60]}"


def guard_size(data: bytes) -> tuple[int, int] | str:
    size = declared_size(data)
    return "refused (no size)" if size is None else size


def microseconds(read, data: bytes, repeat: int = 200) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        read(data)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/header_guard.json"))
    args = parser.parse_args()
    photo = cv2.resize(cv2.imread(str(sorted((common.SHARED / "datasets/crowd-dev/images").glob("*.png"))[0])), (640, 480))
    rows, lines = [], ["| file | maskmodel's guard | µs | Pillow `Image.open` | µs | OpenCV decodes |", "|---|---|---|---|---|---|"]
    for name, suffix in FORMATS.items():
        data = photo_bytes(photo, suffix)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        row = {"file": f"{name} 640x480", "guard": guard_size(data), "guard_us": microseconds(declared_size, data),
               "pillow": pillow_size(data), "pillow_us": microseconds(pillow_size, data),
               "opencv": None if decoded is None else decoded.shape[:2]}
        rows.append(row)
    for name, data in hostile().items():
        rows.append({"file": name, "guard": guard_size(data), "guard_us": microseconds(declared_size, data, 20),
                     "pillow": pillow_size(data), "pillow_us": microseconds(pillow_size, data, 20), "opencv": "not decoded"})
    for row in rows:
        lines.append(f"| {row['file']} | {row['guard']} | {row['guard_us']:.0f} | {row['pillow']} | {row['pillow_us']:.0f} | "
                     f"{row['opencv']} |")
    common.publish("\n".join(lines), {"rows": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()}
                                                for r in rows]}, args.out)


if __name__ == "__main__":
    main()
