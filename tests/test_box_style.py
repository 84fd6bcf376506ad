"""Box style: adjustments, their fit, and the box-style metrics, against hand-computed cases."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from helpers import CROWD_DEV, crowd_images
from maskmodel.evaluation.annotations import AnnotatedFace, AnnotatedImage
from maskmodel.detect.boxstyle import BOX_STYLES, BoxAdjust, fit_box_adjust
from maskmodel.evaluation.evaluate import box_style


@dataclass
class Pred:
    box: tuple
    score: float
    label: str = "with_mask"
    probabilities: dict = None


def test_adjust_moves_then_scales_by_the_box_size():
    boxes = np.array([[10, 20, 30, 60, 0.9]], np.float32)  # 20 wide, 40 high, centre (20, 40)
    adjusted = BoxAdjust(dx=0.5, dy=-0.25, sw=2.0, sh=0.5).apply(boxes)
    # centre (20 + 10, 40 - 10) = (30, 30); size 40 x 20
    assert adjusted[0].tolist() == pytest.approx([10, 20, 50, 40, 0.9])
    assert BoxAdjust().apply(boxes).tolist() == boxes.tolist()
    first, second = BoxAdjust(0.1, 0.2, 1.5, 0.8), BoxAdjust(-0.3, 0.05, 0.9, 1.25)
    assert first.then(second).apply(boxes) == pytest.approx(second.apply(first.apply(boxes)), abs=1e-3)


def test_parse_text_none_and_file(tmp_path):
    assert BoxAdjust.parse("0,0.1,1,1.2") == BoxAdjust(0.0, 0.1, 1.0, 1.2)
    assert BoxAdjust.parse("none").is_identity()
    BoxAdjust(0.01, 0.1, 1.05, 0.95).save(tmp_path / "box.json", fitted_on="x")
    assert BoxAdjust.parse(str(tmp_path / "box.json")) == BoxAdjust(0.01, 0.1, 1.05, 0.95)
    for bad in ("1,2,3", "0,0,0,1", "a,b,c,d"):
        with pytest.raises(ValueError, match="Expected DX,DY,SW,SH"):
            BoxAdjust.parse(bad)


def test_fit_recovers_a_known_adjustment():
    rng = np.random.default_rng(0)
    x1, y1 = rng.uniform(0, 500, 50), rng.uniform(0, 500, 50)
    predicted = np.column_stack([x1, y1, x1 + rng.uniform(10, 80, 50), y1 + rng.uniform(10, 80, 50)])
    known = BoxAdjust(0.02, 0.1, 1.1, 0.9)
    truth = known.apply(predicted)
    truth[:3] += 40  # a few bad matches do not move the medians
    assert fit_box_adjust(predicted, truth) == known
    assert fit_box_adjust(np.zeros((0, 4)), np.zeros((0, 4))).is_identity()


def test_box_style_of_boxes_drawn_too_high():
    # faces 10 high; predictions 2 px (0.2 heights) above: IoU 8/12 = 0.667 and 6/14 = 0.43
    image = AnnotatedImage("x.png", (AnnotatedFace((0, 10, 10, 20), "with_mask"),
                                     AnnotatedFace((20, 10, 30, 20), "without_mask"),
                                     AnnotatedFace((40, 0, 60, 20), "mask_weared_incorrect")))
    predictions = [[Pred((0, 8, 10, 18), 0.9), Pred((20, 6, 30, 16), 0.8), Pred((40, 0, 60, 20), 0.95)]]
    result = box_style([image], predictions)
    # IoU 0.3: both found; 0.5: the first only (ranked first: AP 0.5); 0.55..0.65 the same; from 0.7 none
    assert result["face_ap"]["0.3"] == 1.0 and result["face_ap"]["0.5"] == 0.5
    assert result["face_ap"]["0.5:0.95"] == pytest.approx(0.5 * 4 / 10)
    assert result["offset"] == {"dx": 0.0, "dy": pytest.approx(0.3), "sw": 1.0, "sh": 1.0, "pairs": 2}


def crowd_voc(voc, count: int):
    """A VOC folder holding (links to) the first `count` crowd-dev photos and their annotations."""
    (voc / "images").mkdir(parents=True)
    (voc / "annotations").mkdir()
    for path in crowd_images(count):
        (voc / "images" / path.name).symlink_to(path)
        (voc / "annotations" / f"{path.stem}.xml").symlink_to(CROWD_DEV / "annotations" / f"{path.stem}.xml")
    return voc


def test_fit_box_writes_a_calibration_the_commands_accept(tmp_path):
    voc = crowd_voc(tmp_path / "voc", 2)
    calibration = tmp_path / "box.json"
    result = CliRunner().invoke(main, ["evaluate", "detect", str(voc), "--out", str(tmp_path / "e"),
                                       "--box-adjust", "none", "--fit-box", str(calibration)])
    assert result.exit_code == 0, result.output
    assert "face AP at IoU 0.3 / 0.5 / 0.5:0.95" in result.output and "fitted box adjustment" in result.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    fitted = BoxAdjust.parse(str(calibration))
    assert metrics["fitted"]["box_adjust"] == {"dx": fitted.dx, "dy": fitted.dy, "sw": fitted.sw, "sh": fitted.sh}
    assert metrics["fitted"]["face_ap"]["0.5:0.95"] >= metrics["box_style"]["face_ap"]["0.5:0.95"]
    photo = str(crowd_images(2)[1])
    plain = json.loads(CliRunner().invoke(main, ["predict", photo, "--box-adjust", "none"]).output)["faces"]
    moved = json.loads(CliRunner().invoke(main, ["predict", photo, "--box-adjust", str(calibration)]).output)["faces"]
    assert len(plain) == len(moved)
    expected = fitted.apply(np.array([f["box"] for f in plain]))
    # both outputs are rounded to 0.1 px: the plain box's rounding (0.05) scaled by the fit, plus the moved one's
    tolerance = 0.05 * max(fitted.sw, fitted.sh, 1.0) + 0.05 + 1e-6
    assert np.allclose([f["box"] for f in moved], expected, atol=tolerance)
    assert [f["label"] for f in plain] == [f["label"] for f in moved]  # the classifier sees the detector's box
    wrong = CliRunner().invoke(main, ["predict", photo, "--box-adjust", "1,2"])
    assert wrong.exit_code == 2 and "--box-adjust" in wrong.output


def test_own_boxes_by_default_and_evaluate_tells_what_a_fit_would_change(tmp_path):
    """The reported boxes are the detector's own; on crowd-dev photos, whose annotators draw boxes lower,
    `evaluate detect` says so, with the AP a fitted style would give, without being asked."""
    photo = str(crowd_images(2)[1])
    default = json.loads(CliRunner().invoke(main, ["predict", photo]).output)["faces"]
    own = json.loads(CliRunner().invoke(main, ["predict", photo, "--box-adjust", "none"]).output)["faces"]
    assert [f["box"] for f in default] == [f["box"] for f in own]
    styled = json.loads(CliRunner().invoke(main, ["predict", photo, "--box-adjust", "crowd-dev"]).output)["faces"]
    expected = BOX_STYLES["crowd-dev"]["centerface"].apply(np.array([f["box"] for f in own]))
    assert np.allclose([f["box"] for f in styled], expected, atol=0.1)
    wrong = CliRunner().invoke(main, ["predict", photo, "--face-detector", "ssd", "--box-adjust", "crowd-dev"])
    assert wrong.exit_code == 2 and "fitted for the centerface and yunet detectors only" in wrong.output
    voc = crowd_voc(tmp_path / "voc", 6)
    result = CliRunner().invoke(main, ["evaluate", "detect", str(voc), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert "box style: your boxes sit" in result.output and "face heights lower" in result.output
    assert "with --box-adjust FILE (write FILE with --fit-box FILE)" in result.output
