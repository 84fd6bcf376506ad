"""The published ONNX classifier in OpenCV 4.x: loads and agrees with Keras (<= 1e-4) on real face crops.

OpenCV 4 is installed beside the project, not into its environment:
`pip install --target .cache/opencv4 "opencv-python-headless==4.12.*"` (CI does this). Without it the
test is skipped, or fails when MASKMODEL_REQUIRE_OPENCV4=1 (CI).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import maskmodel
from helpers import ROOT
from test_published import PUBLISHED, real_crops

TARGET = ROOT / ".cache" / "opencv4"

SCRIPT = """
import json, sys
import cv2, numpy as np
model, crops_file, out_file = sys.argv[1:4]
crops = list(np.load(crops_file))
net = cv2.dnn.readNetFromONNX(model)
size = crops[0].shape[0]
net.setInput(cv2.dnn.blobFromImages(crops, 1.0, (size, size), swapRB=True))
np.save(out_file, net.forward().reshape(len(crops), -1))
single = []
for crop in crops[:3]:
    net.setInput(cv2.dnn.blobFromImage(crop, 1.0, (size, size), swapRB=True))
    single.append(net.forward().reshape(-1))
np.save(out_file.replace(".npy", "-single.npy"), np.stack(single))
print(json.dumps({"version": cv2.__version__}))
"""


@pytest.fixture(scope="module")
def opencv4():
    if not (TARGET / "cv2").is_dir():
        message = f"OpenCV 4 not installed in {TARGET}: pip install --target {TARGET} 'opencv-python-headless==4.12.*'"
        if os.environ.get("MASKMODEL_REQUIRE_OPENCV4") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return {**os.environ, "PYTHONPATH": str(TARGET)}


@pytest.mark.parametrize("name", PUBLISHED)
def test_onnx_agrees_with_keras_in_opencv4(name, opencv4, tmp_path):
    keras = pytest.importorskip("keras")
    classifier = maskmodel.load(name)
    crops = np.stack(real_crops(classifier, 32))
    np.save(tmp_path / "crops.npy", crops)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(maskmodel.weights_path(name)), str(tmp_path / "crops.npy"),
                             str(tmp_path / "out.npy")], capture_output=True, text=True, env=opencv4, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["version"].startswith("4.")
    model = keras.saving.load_model(maskmodel.weights_path(name, format="keras"))
    expected = model.predict(crops[..., ::-1].astype("float32"), verbose=0)
    from_opencv4 = np.load(tmp_path / "out.npy")
    assert np.abs(from_opencv4 - expected).max() <= 1e-4
    assert (from_opencv4.argmax(1) == expected.argmax(1)).all()
    assert np.abs(np.load(tmp_path / "out-single.npy") - from_opencv4[:3]).max() <= 1e-5
