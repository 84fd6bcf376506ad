"""Synthetic masks (issue 45): placed from CenterFace's landmarks on real faces, over the nose or below it,
and the three-class model that gates a two-class one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import SHARED
from maskmodel.training import synthetic_masks
from maskmodel.training.synthetic_masks import FaceFrame

REAL_FACEMASK = SHARED / "datasets" / "real-facemask"
UPRIGHT = np.array([100, 100, 140, 100, 120, 130, 105, 150, 135, 150], dtype=np.float32)  # eyes, nose, mouth


def test_the_top_of_the_mask_is_over_the_nose_when_worn_right_and_below_it_when_not():
    frame = FaceFrame.from_landmarks(UPRIGHT)
    assert (frame.height, frame.width, frame.nose_down, frame.nose_across) == (50, 40, 0.6, 0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        tops = {p: frame.anchors(frame.top_for(p, rng))[1, 1] for p in synthetic_masks.PLACEMENTS}
        assert tops["over_nose"] < tops["low_on_nose"] < 130 - 0.15 * 50  # well above the nose tip
        assert 130 < tops["below_nose"] < 140  # just under the nose tip, well above the mouth
        assert tops["chin"] > 150  # below the mouth
    worn, pulled_down = frame.anchors(0.3), frame.anchors(0.8)
    np.testing.assert_allclose(pulled_down - worn, np.tile([0, 25], (6, 1)), atol=1e-4)  # moved, not resized


def test_a_turned_face_gets_a_mask_centred_on_its_nose():
    turned = UPRIGHT.copy()
    turned[4] = 132  # nose tip toward the left eye's side
    anchors = FaceFrame.from_landmarks(turned).anchors(0.3)
    assert anchors[1, 0] > 120  # top centre follows the nose
    assert anchors[2, 0] - anchors[1, 0] < anchors[1, 0] - anchors[0, 0]  # the far side is narrower


@pytest.fixture(scope="module")
def faces():
    """Context crops (RGB) and landmarks of three real unmasked and three real masked faces."""
    from maskmodel.detect.detector_config import one_face_detector
    from maskmodel.training.data import detector_crop
    from maskmodel.training.gate_data import landmark_detector, landmarks_of_crops

    one, landmarks = one_face_detector("centerface"), landmark_detector()
    picked = {}
    for label in ("without_mask", "with_mask"):
        crops = [detector_crop(cv2.imread(str(path)), one)[0]
                 for path in sorted((REAL_FACEMASK / label).iterdir())[:12]]
        found = landmarks_of_crops(np.stack(crops), landmarks)
        picked[label] = [(crop, points) for crop, points in zip(crops, found) if points is not None][:3]
        assert len(picked[label]) == 3
    return picked


def _changed(before: np.ndarray, after: np.ndarray, point: np.ndarray, radius: int = 3) -> float:
    x, y = (int(round(v)) for v in point)
    window = np.s_[y - radius:y + radius + 1, x - radius:x + radius + 1]
    return float(np.abs(before[window].astype(int) - after[window].astype(int)).mean())


@pytest.mark.parametrize("source", ["template", "real"])
def test_a_mask_below_the_nose_leaves_the_nose_and_eyes_as_they_were_and_covers_the_mouth(faces, source):
    rng = np.random.default_rng(1)
    for face, points in faces["without_mask"]:
        landmarks = points.reshape(5, 2)
        mouth = landmarks[3:].mean(0)
        for placement in ("below_nose", "over_nose"):
            if source == "template":
                masked = synthetic_masks.template_mask(face, points, placement, rng)
            else:
                donor, donor_points = faces["with_mask"][int(rng.integers(3))]
                masked = synthetic_masks.real_mask(face, points, donor, donor_points, placement, rng)
            assert masked.shape == face.shape and masked.dtype == np.uint8
            assert _changed(face, masked, landmarks[0]) < 2 and _changed(face, masked, landmarks[1]) < 2
            assert _changed(face, masked, mouth) > 8
            above_tip = landmarks[2] - FaceFrame.from_landmarks(points).down * 0.12 * FaceFrame.from_landmarks(
                points).height  # on the nose, just above its tip
            if placement == "below_nose":
                assert _changed(face, masked, above_tip) < 3  # the nose is still the face's own
            else:
                assert _changed(face, masked, above_tip) > 8


def test_the_gated_model_keeps_the_base_decision_and_its_onnx_file_matches_keras(tmp_path, faces):
    keras = pytest.importorskip("keras")
    from maskmodel.classify.crops import CropPolicy
    from maskmodel.loading import load
    from maskmodel.training.augment import runtime_crop
    from maskmodel.training.export import export_onnx
    from maskmodel.training.third_class import gated_model

    base = load("mask-mobilenetv2-0.35@3.0.0", format="keras")
    rng = np.random.default_rng(2)
    inputs = keras.Model(base.input, base.layers[-1].input)  # the pooled features
    coefficients, bias = rng.normal(0, 0.05, inputs.output.shape[-1]), -0.5
    model = gated_model(base, coefficients, bias)
    crops = np.stack([runtime_crop(face, CropPolicy(margin=0.2, square=True), 128)
                      for pairs in faces.values() for face, _ in pairs]).astype(np.float32)
    two, three = base.predict(crops, verbose=0), model.predict(crops, verbose=0)
    q = 1 / (1 + np.exp(-(inputs.predict(crops, verbose=0) @ coefficients + bias)))
    np.testing.assert_allclose(three.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(three[:, 2], q, atol=1e-5)
    np.testing.assert_allclose(three[:, :2], two * (1 - q)[:, None], atol=1e-5)
    onnx_path = export_onnx(model, tmp_path / "gated.onnx")
    net = cv2.dnn.readNetFromONNX(str(onnx_path))
    bgr = [np.ascontiguousarray(crop[..., ::-1]) for crop in crops]
    net.setInput(cv2.dnn.blobFromImages(bgr, 1.0, (128, 128), swapRB=True))
    np.testing.assert_allclose(net.forward(), three, atol=1e-4)
