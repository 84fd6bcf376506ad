"""The runtime install (`pip install .`, no `[train]` extra): exporting a published model to ONNX works
without TensorFlow, and what needs Keras says so in one line naming the install command, exit 2
(issue 37). Each check runs the real CLI in a fresh interpreter whose imports of TensorFlow, Keras and
tf2onnx fail, as they do where the extra is not installed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

WITHOUT_KERAS = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras", "tf2onnx"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""
CLI = WITHOUT_KERAS + "from maskmodel.cli.main import main\nmain(prog_name='maskmodel')\n"
INSTALL = 'pip install "maskmodel[train]"'


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_the_blocker_hides_keras(tmp_path):
    result = _run(WITHOUT_KERAS + "import keras\n", cwd=tmp_path)
    assert result.returncode == 1 and "No module named 'keras'" in result.stderr


def test_export_of_a_published_model_to_onnx_needs_no_tensorflow(tmp_path):
    result = _run(CLI, "export", "mask-mobilenetv2-0.35", "--format", "onnx", "--out", "m.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())["models"]["mask-mobilenetv2-0.35"]
    record = manifest["versions"][manifest["default"]]["files"]["onnx"]
    assert hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest() == record["sha256"]
    assert f"mask-mobilenetv2-0.35@{manifest['default']}" in result.stdout


@pytest.mark.parametrize("args", [
    ["export", "mask-mobilenetv2-0.35", "--format", "tflite", "--out", "m.tflite"],
    ["export", str(ROOT / "weights" / "mask-mobilenetv2-0.35-3.0.0.keras"), "--format", "onnx", "--out", "k.onnx"],
    ["train", str(ROOT / "tests"), "--out", "run", "--smoke"],
], ids=["tflite", "keras-file-to-onnx", "train"])
def test_what_needs_keras_says_so_in_one_line(tmp_path, args):
    result = _run(CLI, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and INSTALL in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"Error: maskmodel {args[0]}")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_python_calls_that_need_keras_raise_one_error_naming_the_extra(tmp_path):
    code = WITHOUT_KERAS + """
import maskmodel
for call in (lambda: maskmodel.load("mask-mobilenetv2-0.35", format="keras"), lambda: maskmodel.build_model()):
    try:
        call()
    except maskmodel.MissingExtraError as error:
        print(error)
"""
    result = _run(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all(INSTALL in line for line in lines), result.stdout
