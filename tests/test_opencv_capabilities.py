"""Every face detector the CLI offers, on the OpenCV installed here (the one `pip install .` resolves):
it finds faces on a real photo, or is refused in one line that names the remedy, never a traceback.

The same checks on OpenCV 4.12 are in test_opencv4.py, with the SSD's ONNX against its TensorFlow graph
(OpenCV 5.1 cannot read the graph); the capability check itself is `maskmodel.runtime.opencv`.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from helpers import CROWD_DEV, crowd_images
from maskmodel.runtime.opencv import CAPABILITIES, OpenCVCapabilityError, has, require, summary
from maskmodel.cli.detector import FaceDetectorChoice
from maskmodel.cli.main import main
from maskmodel.detect.detector_config import DETECTOR_CLASSES, DetectorConfig, missing_capability

CLI_DETECTORS = FaceDetectorChoice().choices  # the CLI's own list: a detector added later is covered
PHOTO = CROWD_DEV / "images" / "maksssksksss11.png"  # a street photo where every detector, Haar too, finds faces


def test_the_cli_offers_every_detector():
    assert list(CLI_DETECTORS) == list(DETECTOR_CLASSES)


@pytest.mark.parametrize("name", CLI_DETECTORS)
def test_each_cli_detector_finds_faces_or_says_why_not(name):
    result = CliRunner().invoke(main, ["predict", str(PHOTO), "--face-detector", name])
    problem = missing_capability(name)
    if problem is None:
        assert result.exit_code == 0, result.output
        assert '"faces": [{' in result.output  # at least one face on a crowd photo
    else:
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert problem in " ".join(result.output.split()).replace("Error: Invalid value for '--face-detector': ", "")
        with pytest.raises(OpenCVCapabilityError):
            DetectorConfig(name).build()


def test_a_missing_capability_is_one_line_with_a_remedy():
    for name, capability in CAPABILITIES.items():
        assert has(name) == capability.present()
        if not has(name):
            with pytest.raises(OpenCVCapabilityError) as error:
                require(name, "This test")
            message = str(error.value)
            assert "\n" not in message and cv2.__version__ in message and capability.description in message
    assert set(summary()) == set(CAPABILITIES)


def test_ssd_onnx_runs_in_onnxruntime_as_in_opencv():
    """The published SSD file is plain ONNX: ONNX Runtime gives OpenCV's decoded boxes and scores."""
    ort = pytest.importorskip("onnxruntime")
    import maskmodel

    path = maskmodel.weights_path("ssd")
    session, net = ort.InferenceSession(str(path)), cv2.dnn.readNetFromONNX(str(path))
    blob = cv2.dnn.blobFromImage(cv2.imread(str(crowd_images(1)[0])), 1.0, (300, 300), (104.0, 177.0, 123.0))
    net.setInput(blob)
    for from_opencv, from_ort in zip(net.forward(["boxes", "scores"]), session.run(["boxes", "scores"], {"data": blob})):
        assert np.abs(from_opencv - from_ort).max() <= 1e-4


def assert_same_boxes(found: np.ndarray, expected: np.ndarray) -> None:
    """Same faces: each expected box matched by IoU >= 0.99 with a score within 1e-3."""
    from maskmodel.detect.boxes import box_iou

    assert len(found) == len(expected)
    for box in expected:
        overlaps = box_iou(box[:4], found[:, :4])
        best = int(np.argmax(overlaps))
        assert overlaps[best] >= 0.99 and abs(found[best, 4] - box[4]) <= 1e-3


def test_rerunning_the_ssd_conversion_gives_the_published_network(tmp_path):
    """`python -m maskmodel.training.ssd_onnx` (the recipe in the manifest) remakes the shipped file: same
    outputs on a real photo, in OpenCV's DNN module."""
    pytest.importorskip("tf2onnx")
    import maskmodel
    from helpers import FACE_MODELS
    from maskmodel.training.ssd_onnx import convert

    remade = convert(FACE_MODELS / "opencv_face_detector_uint8.pb", FACE_MODELS / "opencv_face_detector.pbtxt",
                     tmp_path / "ssd.onnx")
    blob = cv2.dnn.blobFromImage(cv2.imread(str(PHOTO)), 1.0, (300, 300), (104.0, 177.0, 123.0))
    outputs = []
    for path in (remade, maskmodel.weights_path("ssd")):
        net = cv2.dnn.readNetFromONNX(str(path))
        net.setInput(blob)
        outputs.append(net.forward(["boxes", "scores"]))
    for remade_output, published_output in zip(*outputs):
        assert np.abs(remade_output - published_output).max() <= 1e-6
