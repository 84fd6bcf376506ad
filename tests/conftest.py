"""Fixtures. Real models and photos come from ../shared (beside the project root), see helpers.py.

The environment the tests need is set when pytest starts (`pytest_configure`), before any test module
imports Keras, and restored when it ends: `KERAS_HOME` points at a temporary folder holding the ImageNet
files from ../shared (so `weights="imagenet"` works offline through Keras' own cache), and
`MASKMODEL_HOME` at a session-wide model cache holding the face detectors.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import FACE_MODELS, SHARED

_SAVED: dict[str, str | None] = {}
_TEMPORARY: list[Path] = []


def pytest_configure(config) -> None:
    keras_home = Path(tempfile.mkdtemp(prefix="keras-home-"))
    (keras_home / "models").mkdir()
    for weights in (SHARED / "models" / "keras").glob("*.h5"):
        shutil.copy(weights, keras_home / "models" / weights.name)
    session_home = Path(tempfile.mkdtemp(prefix="maskmodel-home-"))  # for module-scoped fixtures
    for file in FACE_MODELS.iterdir():
        shutil.copyfile(file, session_home / file.name)
    _TEMPORARY.extend([keras_home, session_home])
    settings = {"KERAS_HOME": str(keras_home), "MASKMODEL_HOME": str(session_home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    for key, value in settings.items():
        _SAVED[key] = os.environ.get(key)
        if key != "TF_CPP_MIN_LOG_LEVEL" or key not in os.environ:
            os.environ[key] = value


def pytest_unconfigure(config) -> None:
    for key, value in _SAVED.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for folder in _TEMPORARY:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def model_home(tmp_path_factory, monkeypatch) -> Path:
    """A fresh MASKMODEL_HOME holding the face detectors from ../shared (as `models install` would)."""
    home = tmp_path_factory.mktemp("maskmodel-home")
    for file in FACE_MODELS.iterdir():
        shutil.copyfile(file, home / file.name)
    monkeypatch.setenv("MASKMODEL_HOME", str(home))
    monkeypatch.delenv("MASKMODEL_BASE_URL", raising=False)
    return home


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


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the OpenCV versions the run tested (this environment's, and OpenCV 4's beside the project)."""
    import cv2

    from helpers import ROOT

    opencv4 = sorted((ROOT / ".cache" / "opencv4").glob("opencv_python*-*.dist-info"))
    beside = opencv4[0].name.removesuffix(".dist-info").split("-")[1] if opencv4 else "not installed (tests/test_opencv4.py skipped)"
    terminalreporter.write_line(f"OpenCV tested: {cv2.__version__} (this environment), {beside} "
                                "(.cache/opencv4, tests/test_opencv4.py)")
