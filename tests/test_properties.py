"""Property tests (Hypothesis): box arithmetic, crops, NMS, and the report's CSV round trip."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from maskmodel.classify.crops import CropPolicy, crop_face, expand_box
from maskmodel.detect.boxes import box_iou, non_max_suppression
from maskmodel.io.layout import is_safe_relative
from maskmodel.outputs.report import (COLUMNS, ReportWriter, original_path, path_bytes, prepare_resume, report_path_text,
                                      report_rows)
from maskmodel.results import ImageResult

coordinate = st.floats(-50, 700, allow_nan=False)
extent = st.floats(1, 400, allow_nan=False)
margin = st.floats(0, 1, allow_nan=False)


@given(coordinate, coordinate, extent, extent, margin)
def test_expanded_box_is_square_centred_and_covers_the_box(x, y, w, h, m):
    x1, y1, x2, y2 = expand_box((x, y, x + w, y + h), CropPolicy(margin=m, square=True))
    side = max(w, h) * (1 + 2 * m)
    assert abs((x2 - x1) - side) <= 1 and abs((y2 - y1) - side) <= 1
    assert abs((x1 + x2) / 2 - (x + w / 2)) <= 1 and abs((y1 + y2) / 2 - (y + h / 2)) <= 1
    assert x1 <= x + 0.5 and y1 <= y + 0.5 and x2 >= x + w - 0.5 and y2 >= y + h - 0.5


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 300), st.floats(0, 200), extent, extent, margin, st.integers(8, 96))
def test_crop_has_the_contract_shape_for_any_box_that_touches_the_image(x, y, w, h, m, size):
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    crop = crop_face(image, (x, y, min(x + w, 320), min(y + h, 240)), CropPolicy(margin=m), size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8


boxes = st.lists(st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(2, 120), st.floats(2, 120),
                           st.floats(0.01, 1)), min_size=0, max_size=30)


@settings(deadline=None)
@given(boxes, st.floats(0.1, 0.9))
def test_nms_keeps_the_best_box_and_no_overlapping_pairs(rows, threshold):
    array = np.array([[x, y, x + w, y + h, s] for x, y, w, h, s in rows], dtype=np.float32).reshape(-1, 5)
    kept = non_max_suppression(array, threshold)
    assert len(kept) <= len(array)
    if len(array):
        assert np.isclose(kept[0, 4], array[:, 4].max())
        assert all(any(np.allclose(k, a) for a in array) for k in kept)
    for index, box in enumerate(kept):
        assert (box_iou(box[:4], kept[index + 1 :, :4]) <= threshold + 1e-4).all()
        assert index == 0 or kept[index - 1, 4] >= box[4]


names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1,
                max_size=40).filter(lambda name: is_safe_relative(name) and not name.startswith(".maskmodel"))


@settings(max_examples=50, deadline=None)
@given(st.lists(names, min_size=1, max_size=8, unique=True), st.text(max_size=30))
def test_report_round_trips_any_name_and_message(tmp_path_factory, paths, message):
    report = tmp_path_factory.mktemp("report") / "report.csv"
    writer = ReportWriter(report, append=False)
    for path in paths:
        writer.write(report_rows(ImageResult.failure(path, message)))
    writer.close()
    assert prepare_resume(report) == {report_path_text(path) for path in paths}
    import csv

    with open(report, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [path_bytes(r["path"]).decode("utf-8") for r in rows] == paths
    assert all(original_path(r["message"]) == message.replace("\0", "\\0") for r in rows)
    assert list(rows[0]) == list(COLUMNS)
    # safe in a spreadsheet: no cell begins like a formula (OWASP: = + - @ tab carriage return)
    assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for value in r.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=2, max_size=6, unique=True), st.text(max_size=20), st.integers(1, 10_000))
def test_a_torn_last_record_is_dropped_on_resume(tmp_path_factory, paths, message, cut):
    folder = tmp_path_factory.mktemp("torn")
    report = folder / "report.csv"
    writer = ReportWriter(report, append=False)
    for path in paths[:-1]:
        writer.write(report_rows(ImageResult.failure(path, message)))
    writer.close()
    complete = report.read_bytes()
    writer = ReportWriter(report, append=True)
    writer.write(report_rows(ImageResult.failure(paths[-1], message)))
    writer.close()
    data = report.read_bytes()
    report.write_bytes(data[: len(complete) + (cut % (len(data) - len(complete)))])  # killed mid-record
    assert prepare_resume(report) == {report_path_text(path) for path in paths[:-1]}
    assert report.read_bytes() == complete
