"""docs/opencv.md: its Python example runs with plain OpenCV and agrees with maskmodel; its C++ example
is compiled against the C++ OpenCV where one is installed and run where that OpenCV can run YuNet
(>= 4.8); the classifier contract is checked in C++ on any version. Without a C++ OpenCV the C++ tests
fail with the reason when MASKMODEL_REQUIRE_CPP=1 (CI) and are reported as skipped elsewhere."""

import os
import re
import shutil
import subprocess
import sys

import pytest

import maskmodel
from helpers import CROWD_DEV, ROOT
from maskmodel.detect.boxstyle import BoxAdjust
from maskmodel.io.imageio import read_image
from maskmodel.pipeline import MaskDetector

DOC = (ROOT / "docs" / "opencv.md").read_text()
PHOTO = CROWD_DEV / "images" / "maksssksksss148.png"


def code_block(language: str) -> str:
    return re.search(rf"```{language}\n(.*?)```", DOC, re.S).group(1)


def expected_lines() -> list[str]:
    # the example reports YuNet's own boxes, its classifier run by cv2.dnn (float32) as maskmodel's opencv backend
    detector = MaskDetector("yunet", maskmodel.DEFAULT_CLASSIFIER, "opencv", box_adjust=BoxAdjust(), scales=(640,))
    faces = detector.detect(read_image(PHOTO))
    return [(f.box, f.label, f.probabilities[f.label]) for f in faces]


def check_output(output: str) -> None:
    lines = output.strip().splitlines()
    expected = expected_lines()
    assert lines[-1] == f"{len(expected)} faces"
    assert len(expected) >= 5
    printed = sorted(lines[:-1])
    wanted = sorted(expected, key=lambda e: f"{e[0][0]:.1f}")
    for line in printed:
        x1, y1, x2, y2, label, probability = line.split()
        match = min(wanted, key=lambda e: abs(e[0][0] - float(x1)) + abs(e[0][1] - float(y1)))
        assert max(abs(a - float(b)) for a, b in zip(match[0], (x1, y1, x2, y2))) <= 0.1
        assert label == match[1] and abs(float(probability) - match[2]) <= 2e-4


def arguments() -> list[str]:
    return [str(PHOTO), str(maskmodel.weights_path("yunet-2026may")), str(maskmodel.weights_path(maskmodel.DEFAULT_CLASSIFIER))]


def test_python_example(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code_block("python"))
    result = subprocess.run([sys.executable, str(script), *arguments()], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "maskmodel" not in code_block("python")  # plain OpenCV + NumPy only
    check_output(result.stdout)


def test_python_example_runs_as_written_under_it(tmp_path):
    """The command line docs/opencv.md gives runs the example with the default 128 px classifier, the
    size the example is written for, and prints nothing on stderr (issue 37)."""
    [command] = [block for block in re.findall(r"```bash\n(.*?)```", DOC, re.S) if "example.py" in block]
    assert "mask-mobilenetv2-0.35" in command
    size = maskmodel.model_info(maskmodel.DEFAULT_CLASSIFIER).input["size"]
    assert f"SIZE, MARGIN = {size}, 0.2" in code_block("python")
    (tmp_path / "example.py").write_text(code_block("python"))
    shutil.copy(PHOTO, tmp_path / "photo.jpg")
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    check_output(result.stdout)


CPP_CLASSIFY = """
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <cstdio>
#include <vector>
// Classify ready-made face crops (PNG files) with the ONNX model; print one probability row per crop.
int main(int argc, char** argv) {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(argv[1]);
    std::vector<cv::Mat> crops;
    for (int i = 2; i < argc; ++i) crops.push_back(cv::imread(argv[i]));
    net.setInput(cv::dnn::blobFromImages(crops, 1.0, crops[0].size(), cv::Scalar(), true));
    cv::Mat out = net.forward().reshape(1, (int)crops.size());
    for (int i = 0; i < out.rows; ++i) std::printf("%.7f %.7f\\n", out.at<float>(i, 0), out.at<float>(i, 1));
    return 0;
}
"""


def cpp_opencv() -> tuple[list[str], str]:
    """Compiler flags and version of the C++ OpenCV, or a failure/skip saying why there is none."""
    if shutil.which("g++") and shutil.which("pkg-config"):
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "opencv4"], capture_output=True, text=True)
        version = subprocess.run(["pkg-config", "--modversion", "opencv4"], capture_output=True, text=True)
        if flags.returncode == 0:
            return flags.stdout.split(), version.stdout.strip()
    message = "no C++ OpenCV (pkg-config opencv4) on this machine: apt-get install g++ pkg-config libopencv-dev"
    if os.environ.get("MASKMODEL_REQUIRE_CPP") == "1":
        pytest.fail(message)
    pytest.skip(message)


def compile_cpp(source: str, target, flags: list[str]) -> None:
    path = target.with_suffix(".cpp")
    path.write_text(source)
    subprocess.run(["g++", "-O2", "-std=c++17", str(path), "-o", str(target), *flags], check=True)


@pytest.mark.parametrize("name", maskmodel.list_models(task="classification"))
def test_cpp_classifier_agrees_with_keras(name, tmp_path):
    """The ONNX contract in C++: readNetFromONNX + blobFromImages(swapRB) + forward = Keras (<= 1e-4)."""
    keras = pytest.importorskip("keras")
    import cv2
    import numpy as np

    from test_published import real_crops

    flags, _ = cpp_opencv()
    compile_cpp(CPP_CLASSIFY, tmp_path / "classify", flags)
    crops = real_crops(maskmodel.load(name), 12)
    files = []
    for index, crop in enumerate(crops):
        files.append(str(tmp_path / f"crop{index}.png"))
        cv2.imwrite(files[-1], crop)
    result = subprocess.run([str(tmp_path / "classify"), str(maskmodel.weights_path(name)), *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    from_cpp = np.array([[float(v) for v in line.split()] for line in result.stdout.split("\n") if line.strip()])
    model = keras.saving.load_model(maskmodel.weights_path(name, format="keras"))
    expected = model.predict(np.stack([c[:, :, ::-1] for c in crops]).astype("float32"), verbose=0)
    assert np.abs(from_cpp - expected).max() <= 1e-4


def test_cpp_example(tmp_path):
    flags, version = cpp_opencv()
    compile_cpp(code_block("cpp"), tmp_path / "example", flags)
    if tuple(int(v) for v in version.split(".")[:2]) < (4, 8):
        pytest.skip(f"compiled against C++ OpenCV {version}; YuNet 2026may needs OpenCV >= 4.8 to run "
                    "(the classifier part is checked by test_cpp_classifier_agrees_with_keras)")
    result = subprocess.run([str(tmp_path / "example"), *arguments()], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    check_output(result.stdout)
