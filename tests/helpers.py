"""Paths of the shared test data and small helpers the tests share (fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FACE_MODELS = SHARED / "models" / "face"
CROWD_DEV = SHARED / "datasets" / "crowd-dev"
COVID = SHARED / "datasets" / "covid19-facemask"


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write `image` by its suffix (works for non-ASCII names)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp") else ".png", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def crowd_images(count: int) -> list[Path]:
    """The first `count` crowd-dev photos (sorted), real street scenes with annotated faces."""
    return sorted((CROWD_DEV / "images").glob("*.png"))[:count]


def upload_tree(folder: Path, uri: str) -> None:
    """Copy a local tree into a remote folder with pyarrow itself (not maskmodel's code)."""
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(uri)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with filesystem.open_output_stream(f"{root}/{path.relative_to(folder).as_posix()}") as stream:
                stream.write(path.read_bytes())
