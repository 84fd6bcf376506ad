"""Result records (issue 15, item 4): `ImageResult` is what the workers return and only `maskmodel.outputs.report`
turns it into CSV rows; faces carry the detector's landmarks."""

import ast
import pickle

import pytest

from helpers import ROOT, crowd_images
from maskmodel.io.imageio import read_image
from maskmodel.pipeline import MaskDetector
from maskmodel.outputs.report import COLUMNS, report_rows
from maskmodel.results import Face, Frame, ImageResult

MASKED = {"with_mask": 0.91234, "without_mask": 0.08766}
UNMASKED = {"with_mask": 0.2, "without_mask": 0.8}
# modules between a worker and the report writer: they carry ImageResults and never read or build rows
IN_FLIGHT = ("batch/worker", "batch/engines", "batch/distributed", "batch/run")
REPORT_ONLY = set(COLUMNS) - {"path", "output", "width", "height", "detector", "model", "score", "label"}


def test_an_image_result_is_reported_as_one_row_per_face():
    faces = [Face((1.04, 2.0, 30.06, 40.0), 0.987654, "with_mask", MASKED),
             Face((50.0, 5.0, 80.0, 45.0), 0.5, "without_mask", UNMASKED)]
    result = ImageResult.found("=a.png", faces, (100, 60), "yunet", "tiny", output="=a.png",
                               crops=[("crops/with_mask/a_0.jpg", b"jpeg")])
    rows = report_rows(result)
    assert result.status == "ok" and len(rows) == 2
    assert rows[0] == {"path": "'=a.png", "width": 100, "height": 60, "detector": "yunet", "model": "tiny",
                       "output": "'=a.png", "status": "ok", "face": 0, "x1": 1.0, "y1": 2.0, "x2": 30.1, "y2": 40.0,
                       "score": 0.9877, "label": "with_mask", "p_with_mask": 0.9123, "p_without_mask": 0.0877}
    assert rows[1]["face"] == 1 and all(set(row) <= set(COLUMNS) for row in rows)  # crops stay out of the CSV
    assert pickle.loads(pickle.dumps(result)) == result  # the process pool and Ray carry it


def test_a_video_result_numbers_faces_per_frame_and_reports_tracks():
    faces = [Face((0.0, 0.0, 9.0, 9.0), 0.9, "with_mask", MASKED, track=track) for track in (1, 2, 1)]
    result = ImageResult.found("v.mp4", faces, (320, 240), "yunet", "tiny", frames=[Frame(0, 0.0), Frame(0, 0.0),
                                                                                     Frame(3, 0.37549)])
    rows = report_rows(result)
    assert [(r["frame"], r["time_s"], r["face"], r["track"]) for r in rows] == [(0, 0.0, 0, 1), (0, 0.0, 1, 2),
                                                                               (3, 0.375, 0, 1)]


def test_no_face_and_error_results_are_one_row():
    empty = ImageResult.found("b.png", [], (10, 20), "yunet", "tiny")
    assert empty.status == "no_face"
    assert report_rows(empty) == [{"path": "b.png", "width": 10, "height": 20, "detector": "yunet", "model": "tiny",
                                   "output": None, "status": "no_face"}]
    failed = ImageResult.failure("c.png", "not an image")
    assert failed.status == "error" and report_rows(failed) == [{"path": "c.png", "status": "error",
                                                                 "message": "not an image"}]


def _row_keys(tree: ast.AST) -> list[str]:
    """Report column names used as dict keys or subscripts (building or reading a report row)."""
    found = []
    for node in ast.walk(tree):
        keys = node.keys if isinstance(node, ast.Dict) else [node.slice] if isinstance(node, ast.Subscript) else []
        found += [key.value for key in keys if isinstance(key, ast.Constant) and key.value in REPORT_ONLY]
    return found


def _from_report(tree: ast.AST) -> set[str]:
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module == "maskmodel.outputs.report" for alias in node.names}


def test_only_the_report_renders_rows():
    for name in IN_FLIGHT:
        tree = ast.parse((ROOT / "maskmodel" / f"{name}.py").read_text(encoding="utf-8"))
        assert _row_keys(tree) == [], f"maskmodel/{name}.py builds or reads report rows"
        if name != "batch/run":  # the report writer's caller renders each result once, as it writes it
            assert _from_report(tree) <= {"WORKER_DIED", "original_path", "report_path_text"}, name


@pytest.mark.parametrize("face_detector, options", [("centerface", {}), ("yunet", {}),
                                                    ("yunet", {"scales": (640, 1024), "flip": True})])
def test_faces_carry_landmarks_inside_their_box(face_detector, options):
    detector = MaskDetector(face_detector, **options)
    faces = [face for face in detector.detect(read_image(crowd_images(2)[1])) if face.box[3] - face.box[1] >= 32]
    assert faces
    for face in faces:
        (x1, y1, x2, y2), points = face.box, face.landmarks
        margin = 0.1 * max(x2 - x1, y2 - y1)
        assert len(points) == 5 and all(isinstance(v, float) for point in points for v in point)
        assert all(x1 - margin <= x <= x2 + margin and y1 - margin <= y <= y2 + margin for x, y in points)
        assert max(points[0][1], points[1][1]) < min(points[3][1], points[4][1])  # eyes above the mouth corners


def test_a_detector_without_landmarks_gives_none():
    class Boxes:
        name = "boxes"

        def detect(self, image):
            import numpy as np

            return np.array([[10, 10, 60, 70, 0.9]], np.float32)

    faces = MaskDetector(Boxes()).detect(read_image(crowd_images(1)[0]))
    assert len(faces) == 1 and faces[0].landmarks is None and faces[0].track is None
