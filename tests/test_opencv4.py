"""The runtime on OpenCV 4.x: the published ONNX classifier agrees with Keras (<= 1e-4) on real face crops,
every face detector the CLI offers finds faces (CenterFace on `cv2.dnn` too), the SSD's ONNX gives the
boxes of its TensorFlow graph, and one `annotate` run completes.

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
from helpers import ROOT, crowd_images
from test_opencv_capabilities import CLI_DETECTORS, PHOTO, assert_same_boxes
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


DETECTORS_SCRIPT = """
import json, sys
import cv2
import maskmodel
from maskmodel.detect.centerface import CenterFaceDetector
from maskmodel.detect.detector_config import DETECTOR_CLASSES, DetectorConfig
photos = [cv2.imread(path) for path in sys.argv[1:]]
# float32 on the default backend: compared below with cv2.dnn's boxes to 1e-3 (bf16 is checked in test_runtime.py)
found = {name: [DetectorConfig(name).build(precision="fp32").detect(photo).tolist() for photo in photos]
         for name in DETECTOR_CLASSES}
found["centerface-opencv"] = [CenterFaceDetector(maskmodel.weights_path("centerface"), backend="opencv").detect(photo).tolist()
                              for photo in photos]
found["ssd-tensorflow"] = [DetectorConfig("ssd", version="1.0.0").build().detect(photo).tolist() for photo in photos]
print(json.dumps({"version": cv2.__version__, "found": found}))
"""


def run_on_opencv4(arguments: list[str], env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_every_detector_runs_on_opencv4_and_the_ssd_onnx_matches_its_graph(opencv4, tmp_path):
    script = tmp_path / "detect.py"
    script.write_text(DETECTORS_SCRIPT)
    photos = [PHOTO, *crowd_images(5)]
    result = run_on_opencv4([str(script), *map(str, photos)], opencv4, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["version"].startswith("4.")
    found = {name: [np.array(boxes, dtype=np.float32).reshape(-1, 5) for boxes in per_photo]
             for name, per_photo in report["found"].items()}
    for name in [*CLI_DETECTORS, "centerface-opencv"]:
        assert len(found[name][0]), name
    for onnx, graph in zip(found["ssd"], found["ssd-tensorflow"]):
        assert_same_boxes(onnx, graph)
    for on_dnn, default in zip(found["centerface-opencv"], found["centerface"]):
        assert_same_boxes(on_dnn, default)


@pytest.mark.parametrize("name", CLI_DETECTORS)
def test_each_cli_detector_on_opencv4(name, opencv4, tmp_path):
    result = run_on_opencv4(["-m", "maskmodel", "predict", str(PHOTO), "--face-detector", name],
                            opencv4, tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"faces": [{' in result.stdout and "Traceback" not in result.stderr


def test_annotate_runs_on_opencv4(opencv4, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in crowd_images(3):
        (photos / path.name).write_bytes(path.read_bytes())
    result = run_on_opencv4(["-m", "maskmodel", "annotate", str(photos), "--out", str(tmp_path / "out"),
                             "--backend", "opencv"], opencv4, tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["used"]["versions"]["opencv"].startswith("4.") and summary["faces"] > 0
