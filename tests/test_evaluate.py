"""`maskmodel evaluate` end to end on a few real crowd-dev photos (VOC and the same data as YOLO)."""

import json
import shutil

import cv2
import pytest
from click.testing import CliRunner

from cli.main import main
from conftest import COVID, CROWD_DEV
from maskmodel.annotations import read_voc_folder

NAMES = ["with_mask", "without_mask", "mask_weared_incorrect"]


@pytest.fixture(scope="module")
def small_voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    (root / "images").mkdir()
    (root / "annotations").mkdir()
    for stem in ("maksssksksss148", "maksssksksss11", "maksssksksss200"):
        shutil.copy(CROWD_DEV / "images" / f"{stem}.png", root / "images")
        shutil.copy(CROWD_DEV / "annotations" / f"{stem}.xml", root / "annotations")
    return root


def as_yolo(voc_root, target):
    (target / "images").mkdir(parents=True)
    (target / "labels").mkdir()
    (target / "classes.txt").write_text("\n".join(NAMES) + "\n")
    for annotated in read_voc_folder(voc_root):
        shutil.copy(annotated.image_path, target / "images")
        height, width = cv2.imread(str(annotated.image_path)).shape[:2]
        lines = [f"{NAMES.index(f.label)} {(f.box[0] + f.box[2]) / 2 / width} {(f.box[1] + f.box[3]) / 2 / height} "
                 f"{(f.box[2] - f.box[0]) / width} {(f.box[3] - f.box[1]) / height}" for f in annotated.faces]
        (target / "labels" / f"{annotated.image_path.stem}.txt").write_text("\n".join(lines))


def test_pipeline_detection_metrics(small_voc, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "detect", str(small_voc), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["images"] == 3 and metrics["faces"] == 24  # 25 boxes, 1 mask_weared_incorrect ignored
    assert 0.5 < metrics["face_ap50"] <= 1.0 and 0.0 < metrics["map50"] <= 1.0
    assert metrics["setup"]["face_detector"] == "centerface" and metrics["setup"]["mask_weared_incorrect"] == "ignore"
    assert cv2.imread(str(tmp_path / "e" / "pr_curves.png")).shape == (480, 640, 3)


def test_classifier_only_voc_and_yolo_agree(small_voc, tmp_path):
    as_yolo(small_voc, tmp_path / "yolo")
    outputs = []
    for data, extra in ((small_voc, []), (tmp_path / "yolo", ["--format", "yolo"])):
        out = tmp_path / f"out-{len(outputs)}"
        result = CliRunner().invoke(main, ["evaluate", "detect", str(data), "--out", str(out), "--classifier-only", *extra])
        assert result.exit_code == 0, result.output
        outputs.append(json.loads((out / "metrics.json").read_text()))
    voc, yolo = outputs
    assert voc["face_ap50"] == pytest.approx(1.0) and voc["recall"] == 1.0  # annotated boxes are the predictions
    assert voc["classification"]["count"] == 24
    assert yolo["classification"]["confusion_matrix"] == voc["classification"]["confusion_matrix"]


def test_classify_folder(tmp_path):
    for label in ("with_mask", "without_mask"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for source in sorted((COVID / "test" / label).iterdir())[:4]:
            shutil.copy(source, tmp_path / "data" / label)
    result = CliRunner().invoke(main, ["evaluate", "classify", str(tmp_path / "data"), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["count"] == 8 and metrics["accuracy"] >= 0.75
    for name in ("metrics.md", "confusion.png"):
        assert (tmp_path / "e" / name).stat().st_size > 0
