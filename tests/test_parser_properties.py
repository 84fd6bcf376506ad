"""Every parser a user can feed (issue 29): random and hostile text gives a valid result or the project's
own error (a `MaskmodelError`), never another exception. Hypothesis, a modest number of examples each."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import write_image
from maskmodel.detect.boxstyle import BoxAdjust
from maskmodel.errors import MaskmodelError
from maskmodel.evaluation.annotations import read_voc, read_yolo_folder
from maskmodel.io.runstate import RunState, recorded_name_problem
from maskmodel.zoo.local_models import model_record
from maskmodel.zoo.schema import check_contract

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30),
                    st.sampled_from(["0.5", "nan", "1e400", "-0", "0x10", ""]))
HOSTILE = st.one_of(st.text(max_size=200), st.sampled_from(["../x", "/etc/passwd", "a\nb", "\u202e", "\x00", "..",
                                                            "a/b", "C:\\x", "\ufeff0 0.5 0.5 0.1 0.1"]))
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | HOSTILE,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE, inner, max_size=4),
                    max_leaves=12)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


def _folder(base: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=base))


def _valid_or_ours(call):
    try:
        return call()
    except MaskmodelError:
        return None


@FAST
@given(st.lists(st.one_of(st.tuples(st.integers(-2, 3), NUMBERS, NUMBERS, NUMBERS, NUMBERS).map(
    lambda fields: " ".join(map(str, fields))), HOSTILE), max_size=6), st.booleans())
def test_yolo_labels(base, lines, bom):
    folder = _folder(base)
    write_image(folder / "images" / "a.png", np.full((40, 50, 3), 90, np.uint8))
    (folder / "labels").mkdir()
    (folder / "labels" / "a.txt").write_bytes(b"\xef\xbb\xbf" * bom + "\n".join(lines).encode("utf-8", "surrogatepass"))
    images = _valid_or_ours(lambda: read_yolo_folder(folder / "images", folder / "labels", ["with_mask", "without_mask"]))
    for image in images or ():
        for face in image.faces:
            x1, y1, x2, y2 = face.box
            assert 0 <= x1 < x2 <= 50 and 0 <= y1 < y2 <= 40  # clipped to the image, never empty or inverted


@FAST
@given(st.one_of(HOSTILE, st.binary(max_size=300),
                 st.tuples(HOSTILE, st.lists(st.tuples(HOSTILE, NUMBERS, NUMBERS, NUMBERS, NUMBERS), max_size=4)).map(
                     lambda record: "<annotation><filename>a.png</filename>" + "".join(
                         f"<object><name>{name}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                         f"<ymax>{d}</ymax></bndbox></object>" for name, a, b, c, d in record[1]) + "</annotation>")))
@example('<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><annotation><filename>&b;</filename></annotation>')
def test_voc_annotations(base, text):
    folder = _folder(base)
    write_image(folder / "images" / "a.png", np.full((40, 50, 3), 90, np.uint8))
    path = folder / "a.xml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    image = _valid_or_ours(lambda: read_voc(path, folder / "images"))
    for face in image.faces if image else ():
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= 50 and 0 <= y1 < y2 <= 40


@FAST
@given(st.one_of(HOSTILE, st.lists(NUMBERS, min_size=4, max_size=4).map(lambda v: ",".join(map(str, v)))))
def test_box_adjust_text(text):
    adjust = _valid_or_ours(lambda: BoxAdjust.parse(text))
    assert adjust is None or isinstance(adjust, BoxAdjust)


@FAST
@given(st.one_of(JSON, st.fixed_dictionaries({key: NUMBERS for key in ("dx", "dy", "sw", "sh")})))
def test_box_adjust_files(base, data):
    path = _folder(base) / "box.json"
    path.write_text(json.dumps(data))
    adjust = _valid_or_ours(lambda: BoxAdjust.parse(str(path)))
    if adjust is not None:  # what parsed is a usable adjustment: finite boxes out of finite boxes
        assert np.isfinite(adjust.apply(np.array([[0, 0, 10, 10]]))).all()


CONTRACT = {"task": "classification", "classes": ["with_mask", "without_mask"],
            "input": {"size": 32, "crop": {"margin": 0.2, "square": True}}}


@FAST
@given(st.one_of(JSON, st.fixed_dictionaries({"classes": st.lists(HOSTILE, max_size=4)}),
                 st.fixed_dictionaries({"input": JSON}), st.fixed_dictionaries({"task": JSON})))
def test_model_contracts(base, change):
    folder = _folder(base)
    (folder / "model.onnx").write_bytes(b"not read here")
    record = {**CONTRACT, **change} if isinstance(change, dict) else change
    (folder / "model.json").write_text(json.dumps(record))
    info = _valid_or_ours(lambda: model_record(folder))
    if info is not None:
        check_contract({"classes": list(info.classes), "input": info.input}, "again")  # what loads, passes the schema
        assert all("/" not in name and name.isprintable() for name in info.classes)


@FAST
@given(st.lists(st.one_of(JSON, st.text(alphabet="ab./", max_size=12)), max_size=6))
def test_the_record_of_written_names(base, names):
    folder = _folder(base)
    (folder / ".maskmodel").mkdir()
    (folder / ".maskmodel" / "written.jsonl").write_text("".join(json.dumps(name) + "\n" for name in names))
    written = _valid_or_ours(lambda: RunState(folder).written())
    for name in written or ():
        assert recorded_name_problem(name) is None
        assert (folder / name).resolve().is_relative_to(folder.resolve())
    recorded = [entry.get("name") if isinstance(entry, dict) else entry for entry in names]
    assert written is None or set(written) == {name for name in recorded if recorded_name_problem(name) is None}
