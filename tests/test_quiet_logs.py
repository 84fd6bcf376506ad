"""Quiet by default (issue 37): no TensorFlow, absl, oneDNN or CUDA lines and no OpenCV `[ WARN:...]`
from the commands and the documented Python calls, unless `--verbose`. Each check runs a fresh
interpreter (TensorFlow prints its start-up lines once per process) without `TF_CPP_MIN_LOG_LEVEL`,
and reads its real stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import CROWD_DEV, ROOT

KERAS_FILE = ROOT / "weights" / "mask-mobilenetv2-0.35-3.0.0.keras"
# after the command, an OpenCV call that logs a warning at OpenCV's default level
CLI_THEN_OPENCV = """
import sys, cv2
from maskmodel.cli.main import main
try:
    main(sys.argv[1:], prog_name="maskmodel", standalone_mode=False)
finally:
    cv2.imread("missing.png")
"""


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_export_of_a_keras_model_is_quiet_unless_verbose(tmp_path):
    cli = "from maskmodel.cli.main import main\nmain(prog_name='maskmodel')\n"
    quiet = _run(cli, "export", str(KERAS_FILE), "--out", "q.onnx", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout.startswith("wrote q.onnx")
    verbose = _run(cli, "export", str(KERAS_FILE), "--out", "v.onnx", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 0 and verbose.stderr != ""  # TensorFlow's start-up lines, kept


def test_loading_a_keras_model_in_python_is_quiet(tmp_path):
    result = _run("import maskmodel\nprint(type(maskmodel.load('mask-mobilenetv2-0.35', format='keras')).__name__)\n",
                  cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.strip() == "Functional"


def test_the_training_guides_python_snippet_is_quiet(tmp_path):
    """Issue 44 (9): docs/training.md's snippet printed TensorFlow's start-up lines (the builder imported Keras
    only when called, after the quiet import)."""
    import re

    [snippet] = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "training.md").read_text(), re.S)
    result = _run(snippet, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("args", [["models", "list"], ["export", "mask-mobilenetv2-0.35", "--out", "m.onnx"],
                                  ["predict", str(CROWD_DEV / "images" / "maksssksksss230.png")]], ids=["models", "export", "predict"])
def test_every_command_leaves_opencv_at_errors_unless_verbose(tmp_path, args):
    quiet = _run(CLI_THEN_OPENCV, *args, cwd=tmp_path)
    assert "[ WARN" not in quiet.stderr, quiet.stderr
    (tmp_path / "v").mkdir()
    verbose = _run(CLI_THEN_OPENCV, *args, "--verbose", cwd=tmp_path / "v")
    assert "[ WARN" in verbose.stderr and "missing.png" in verbose.stderr


def test_loading_a_face_detector_in_python_is_quiet(tmp_path):
    """`maskmodel.load("yunet")`: OpenCV 5 warned that its new DNN engine ignores targets."""
    result = _run("import maskmodel\nprint(maskmodel.load('yunet').name)\n", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.skipif(not __import__("importlib").util.find_spec("openvino"), reason="openvino is not installed")
def test_openvino_leaves_the_home_folder_as_it_was(tmp_path):
    """Issue 44 (10): importing OpenVINO made `~/intel/openvino_ga_cid` and `~/intel/stats` (its telemetry)."""
    home, photos = tmp_path / "home", tmp_path / "photos"
    home.mkdir()
    photos.mkdir()
    (photos / "a.png").write_bytes((CROWD_DEV / "images" / "maksssksksss657.png").read_bytes())
    env = {**os.environ, "HOME": str(home)}
    result = subprocess.run([sys.executable, "-m", "maskmodel", "annotate", str(photos), "--out", str(tmp_path / "out"),
                             "--backend", "openvino", "-q"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(home.iterdir()) == []
