"""CenterFace on real crowd photos: dynamic input, both backends, box quality, mirrored passes, fusion."""

import numpy as np
import pytest

from helpers import CROWD_DEV, FACE_MODELS, crowd_images
from maskmodel.evaluation.annotations import read_voc
from maskmodel.detect.centerface import CenterFaceDetector, dynamic_onnx
from maskmodel.detect.boxes import box_iou, merge_passes, mirror_boxes, weighted_box_fusion
from maskmodel.detect.detector_config import create_face_detector
from maskmodel.io.imageio import read_image

MODEL = FACE_MODELS / "centerface_bnmerged.onnx"


@pytest.fixture(scope="module")
def photos():
    return [read_image(path) for path in crowd_images(4)]


def test_dynamic_onnx_keeps_the_weights_and_frees_the_shapes():
    onnxruntime = pytest.importorskip("onnxruntime")
    upstream = MODEL.read_bytes()
    model = dynamic_onnx(upstream)
    assert len(upstream) - len(model) < 20_000  # only value infos changed: the weights are all there
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input.1", ["N", 3, "H", "W"])]
    assert [o.shape[1] for o in session.get_outputs()] == [1, 2, 2, 10]
    heat = session.run(None, {"input.1": np.zeros((2, 3, 64, 96), np.float32)})[0]
    assert heat.shape == (2, 1, 16, 24)


@pytest.mark.parametrize("options", [{}, {"scales": (640, 1024), "flip": True}, {"scales": (800,), "merge": "nms"}])
def test_onnxruntime_and_opencv_agree(photos, options):
    pytest.importorskip("onnxruntime")
    runtime = CenterFaceDetector(MODEL, backend="onnxruntime", **options)
    opencv = CenterFaceDetector(MODEL, backend="opencv", **options)
    for photo in photos:
        (boxes, marks), (boxes_cv, marks_cv) = runtime.detect_with_landmarks(photo), opencv.detect_with_landmarks(photo)
        assert len(boxes) and boxes.shape == boxes_cv.shape
        assert np.allclose(boxes, boxes_cv, atol=0.01) and np.allclose(marks, marks_cv, atol=0.01)


def test_boxes_match_the_annotated_faces():
    detector = create_face_detector("centerface")
    found = total = 0
    for path in crowd_images(4):
        annotated = read_voc(CROWD_DEV / "annotations" / f"{path.stem}.xml", CROWD_DEV / "images")
        boxes = detector.detect(read_image(path))
        assert boxes.dtype == np.float32 and boxes.shape[1] == 5 and np.all(np.diff(boxes[:, 4]) <= 0)
        for face in annotated.faces:
            if face.box[3] - face.box[1] >= 16:
                total += 1
                found += bool(len(boxes)) and box_iou(np.array(face.box), boxes[:, :4]).max() >= 0.5
    assert total >= 10 and found >= 0.7 * total, (found, total)


def test_landmarks_sit_inside_their_faces(photos):
    boxes, marks = CenterFaceDetector(MODEL).detect_with_landmarks(photos[1])
    big = (boxes[:, 3] - boxes[:, 1]) >= 32
    assert big.any() and marks.shape == (len(boxes), 10)
    for box, points in zip(boxes[big], marks[big]):
        xs, ys = points[0::2], points[1::2]
        assert np.all((xs >= box[0] - 2) & (xs <= box[2] + 2) & (ys >= box[1] - 2) & (ys <= box[3] + 2))
        assert max(ys[0], ys[1]) < min(ys[3], ys[4])  # eyes above the mouth corners


def test_flip_gives_mirrored_boxes_for_a_mirrored_photo(photos):
    detector = CenterFaceDetector(MODEL, flip=True)
    for photo in photos:
        found = detector.detect(photo)
        in_mirror = detector.detect(np.ascontiguousarray(photo[:, ::-1]))
        expected = mirror_boxes(found, photo.shape[1])
        matched = [box_iou(box[:4], in_mirror[:, :4]).max() for box in expected if box[4] >= 0.5]
        assert matched and min(matched) > 0.9


def test_an_empty_image_and_a_sliver_have_no_faces():
    detector = CenterFaceDetector(MODEL, scales=(640, None), flip=True)
    boxes, marks = detector.detect_with_landmarks(np.zeros((5, 400, 3), np.uint8))
    assert boxes.shape == (0, 5) and marks.shape == (0, 10)
    assert detector.detect(np.full((300, 200, 3), 128, np.uint8)).shape == (0, 5)


def test_weighted_box_fusion_by_hand():
    boxes = np.array([[0, 0, 10, 10, 0.8], [2, 0, 12, 10, 0.4], [50, 50, 60, 60, 0.6]], np.float32)
    fused, owner = weighted_box_fusion(boxes, 0.3, passes=2)
    # first cluster: score-weighted mean x1 = (0 * 0.8 + 2 * 0.4) / 1.2; score = mean 0.6 x 2/2
    assert fused[0].tolist() == pytest.approx([0.8 / 1.2, 0, 10 + 0.8 / 1.2, 10, 0.6])
    assert fused[1].tolist() == pytest.approx([50, 50, 60, 60, 0.3])  # found by one pass of two
    assert owner.tolist() == [0, 0, 1]
    marks = [np.zeros((2, 10), np.float32), np.ones((1, 10), np.float32)]
    merged, points = merge_passes([(boxes[:2], marks[0]), (boxes[2:], marks[1])], 0.3)
    assert merged.shape == (2, 5) and points[1].tolist() == [1.0] * 10
    kept, _ = merge_passes([(boxes[:2], marks[0]), (boxes[2:], marks[1])], 0.3, "nms")
    assert kept[:, 4].tolist() == pytest.approx([0.8, 0.6])


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="Expected backend"):
        CenterFaceDetector(MODEL, backend="cuda")
    with pytest.raises(ValueError, match="Expected merge"):
        CenterFaceDetector(MODEL, merge="mean")
