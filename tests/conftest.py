"""Shared fixtures. Real models and photos come from ../shared (beside the project root)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FACE_MODELS = SHARED / "models" / "face"
CROWD_DEV = SHARED / "datasets" / "crowd-dev"
COVID = SHARED / "datasets" / "covid19-facemask"

# Keras reads KERAS_HOME when it is imported: point it at a temporary folder holding the ImageNet
# files from ../shared, so that weights="imagenet" works offline through Keras' own cache.
_KERAS_HOME = Path(tempfile.mkdtemp(prefix="keras-home-"))
(_KERAS_HOME / "models").mkdir()
for _h5 in (SHARED / "models" / "keras").glob("*.h5"):
    shutil.copy(_h5, _KERAS_HOME / "models" / _h5.name)
os.environ["KERAS_HOME"] = str(_KERAS_HOME)
# Module-scoped fixtures run before the per-test `model_home`: give them a session-wide cache too.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="maskmodel-home-"))
for _file in FACE_MODELS.iterdir():
    shutil.copyfile(_file, _SESSION_HOME / _file.name)
os.environ["MASKMODEL_HOME"] = str(_SESSION_HOME)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def model_home(tmp_path_factory, monkeypatch) -> Path:
    """A fresh MASKMODEL_HOME holding the face detectors from ../shared (as `models install` would)."""
    home = tmp_path_factory.mktemp("maskmodel-home")
    for file in FACE_MODELS.iterdir():
        shutil.copyfile(file, home / file.name)
    monkeypatch.setenv("MASKMODEL_HOME", str(home))
    monkeypatch.delenv("MASKMODEL_BASE_URL", raising=False)
    return home


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


@pytest.fixture(scope="module")
def s3_uri():
    """A real S3-protocol server on 127.0.0.1 (moto's server) with a bucket; gives a folder's URI."""
    pytest.importorskip("pyarrow")
    moto_server = pytest.importorskip("moto.server")
    import pyarrow.fs as pafs

    credentials = {"AWS_ACCESS_KEY_ID": "maskmodel", "AWS_SECRET_ACCESS_KEY": "maskmodel", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {key: os.environ.get(key) for key in credentials}
    os.environ.update(credentials)  # read by pyarrow here and by the worker processes
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = f"endpoint_override={host}:{port}&scheme=http&region=us-east-1"
    filesystem, _ = pafs.FileSystem.from_uri(f"s3://photos?{options}&allow_bucket_creation=true")
    filesystem.create_dir("photos")
    yield lambda folder: f"s3://photos/{folder}?{options}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def upload_tree(folder: Path, uri: str) -> None:
    """Copy a local tree into a remote folder with pyarrow itself (not maskmodel's code)."""
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(uri)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with filesystem.open_output_stream(f"{root}/{path.relative_to(folder).as_posix()}") as stream:
                stream.write(path.read_bytes())
