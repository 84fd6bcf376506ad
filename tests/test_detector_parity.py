"""CenterFace as a Keras model (issue 42): the port reproduces the published ONNX, and its ONNX export runs
on every runtime like the original."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import FACE_MODELS, crowd_images

pytest.importorskip("tensorflow")

from maskmodel.detect.centerface import CenterFaceDetector, dynamic_onnx  # noqa: E402
from maskmodel.io.imageio import read_image  # noqa: E402

PUBLISHED = FACE_MODELS / "centerface_bnmerged.onnx"
SCALES = (384, 800)  # the default's first pass and its full pass


@pytest.fixture(scope="module")
def keras_centerface():
    from maskmodel.training.detector_model import port_centerface

    return port_centerface(PUBLISHED)


def _blob(image: np.ndarray, longer_side: int) -> np.ndarray:
    import cv2

    factor = longer_side / max(image.shape[:2])
    width, height = round(image.shape[1] * factor), round(image.shape[0] * factor)
    scaled = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    blob = np.zeros((1, 3, -(-height // 32) * 32, -(-width // 32) * 32), np.float32)
    blob[0, :, :height, :width] = scaled[..., ::-1].transpose(2, 0, 1)
    return blob


class KerasNetwork:
    """The Keras port behind the runtime's `forward` (NCHW blob in, the four NCHW maps out)."""

    def __init__(self, model) -> None:
        self.model = model

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        maps = self.model(blob.transpose(0, 2, 3, 1), training=False)
        return [np.asarray(maps[head]).transpose(0, 3, 1, 2) for head in ("heat", "scale", "offset", "landmarks")]


def test_keras_port_reproduces_the_published_maps_and_boxes(keras_centerface):
    import onnxruntime

    session = onnxruntime.InferenceSession(dynamic_onnx(PUBLISHED.read_bytes()), providers=["CPUExecutionProvider"])
    ported = KerasNetwork(keras_centerface)
    worst = 0.0
    for path in crowd_images(20):
        image = read_image(path)
        for scale in SCALES:
            blob = _blob(image, scale)
            reference = session.run(["537", "538", "539", "540"], {"input.1": blob})
            for expected, got in zip(reference, ported.run(blob)):
                worst = max(worst, float(np.abs(expected - got).max()))
    assert worst <= 1e-4, f"largest difference of a map: {worst}"

    original = CenterFaceDetector(PUBLISHED, backend="onnxruntime", precision="fp32")
    keras_detector = CenterFaceDetector(PUBLISHED, backend="onnxruntime", precision="fp32")
    keras_detector._network = ported
    for path in crowd_images(20):
        image = read_image(path)
        expected, got = original.detect(image), keras_detector.detect(image)
        assert expected.shape == got.shape, path.name
        np.testing.assert_allclose(got, expected, atol=1e-3, err_msg=path.name)


@pytest.mark.parametrize("backend", ["opencv", "onnxruntime", "openvino"])
def test_exported_onnx_runs_like_the_original(keras_centerface, tmp_path_factory, backend):
    import cv2

    from maskmodel.training.detector_model import export_detector_onnx

    if backend == "openvino":
        pytest.importorskip("openvino")
    exported = tmp_path_factory.getbasetemp() / "centerface-keras.onnx"
    if not exported.exists():
        export_detector_onnx(keras_centerface, exported)
    assert int(cv2.__version__.split(".")[0]) >= 4
    original = CenterFaceDetector(PUBLISHED, backend=backend, precision="fp32")
    ours = CenterFaceDetector(exported, backend=backend, precision="fp32")
    for path in crowd_images(4):
        image = read_image(path)
        expected, got = original.detect(image), ours.detect(image)
        assert len(expected) and expected.shape == got.shape, path.name
        np.testing.assert_allclose(got, expected, atol=1e-3, err_msg=path.name)


def test_a_narrower_centerface_starts_from_keras_imagenet_weights():
    """The builder's backbone carries keras.applications' layer names: Keras' ImageNet file of a width loads into
    it by name (the start of a student for issue 43), and the four maps come out at stride 4."""
    import h5py

    from maskmodel.training.builder import imagenet_file
    from maskmodel.training.detector_model import build_centerface

    model = build_centerface(alpha=0.35, weights="imagenet", activation="relu6")
    assert model.get_layer("preprocess").scale == 1 / 127.5  # ImageNet weights expect [-1, 1], not 0..255
    with h5py.File(imagenet_file(0.35), "r") as weights:
        for name in ("Conv1", "block_5_depthwise", "block_16_project"):
            expected = np.array(next(iter(weights[name][name].values())))
            np.testing.assert_array_equal(model.get_layer(name).get_weights()[0], expected)
    maps = model(np.zeros((1, 64, 96, 3), np.float32))
    assert {name: tuple(maps[name].shape) for name in maps} == {
        "heat": (1, 16, 24, 1), "scale": (1, 16, 24, 2), "offset": (1, 16, 24, 2), "landmarks": (1, 16, 24, 10)}
    assert model.count_params() < build_centerface().count_params() / 5
