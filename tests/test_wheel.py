"""The wheel, installed with the base extras only (no TensorFlow), loads the published classifier
from its installed location and annotates a real photo."""

import os
import shutil
import subprocess
import sys
import venv
import zipfile

from helpers import CROWD_DEV, ROOT


def test_wheel_without_tensorflow(tmp_path, model_home):
    # copy the tracked sources so the build never writes into the checkout
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", ".cache", "build", "dist",
                                                               "*.egg-info", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
                   check=True)
    wheel = next((tmp_path / "dist").glob("maskmodel-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"maskmodel"}  # no top-level `cli` (or anything) that another package could clash with
    templates = {name.rsplit("/", 1)[1] for name in names if name.startswith("maskmodel/training/mask_templates/")}
    assert {"anchors.json", "surgical.png", "LICENSE-MaskTheFace"} <= templates  # the synthetic masks' templates
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True)
    out = tmp_path / "out"
    script = """
import importlib.util, sys, maskmodel
assert importlib.util.find_spec("tensorflow") is None and importlib.util.find_spec("keras") is None
path = maskmodel.weights_path("mask-mobilenetv2-1.0", format="onnx")
assert "site-packages" in str(path), path
print(maskmodel.load("mask-mobilenetv2-1.0").contract)
"""
    env = {**os.environ, "MASKMODEL_HOME": str(model_home)}
    subprocess.run([python, "-c", script], check=True, cwd=tmp_path, env=env)
    photo = CROWD_DEV / "images" / "maksssksksss148.png"
    result = subprocess.run([env_dir / "bin" / "maskmodel", "annotate", str(photo), "--out", str(out)],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (out / "maksssksksss148.png").is_file()
    assert len((out / "report.csv").read_text().splitlines()) >= 6  # header + five faces or more
    help_text = subprocess.run([python, "-m", "maskmodel", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert help_text.returncode == 0 and "annotate" in help_text.stdout
