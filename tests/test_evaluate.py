"""`maskmodel evaluate` end to end on a few real crowd-dev photos (VOC and the same data as YOLO)."""

import json
import shutil

import cv2
import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from helpers import COVID, CROWD_DEV
from maskmodel.evaluation.annotations import read_voc_folder

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


def bad_copy(small_voc, target):
    """The small VOC set plus one bad record of each kind."""
    shutil.copytree(small_voc, target)
    good = (small_voc / "annotations" / "maksssksksss148.xml").read_text()
    records = {
        "malformed.xml": "<annotation><filename>maksssksksss11.png</filename><object>",
        "no_filename.xml": good.replace("<filename>maksssksksss148.png</filename>", ""),
        "bad_box.xml": good.replace("<xmax>", "<xmax>-", 1),
        "text_box.xml": good.replace("<ymin>", "<ymin>abc", 1),
        "missing_image.xml": good.replace("maksssksksss148.png", "nosuch.png"),
        "broken_image.xml": good.replace("maksssksksss148.png", "broken.png"),
    }
    for name, text in records.items():
        (target / "annotations" / name).write_text(text)
    (target / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    return records


def test_bad_voc_records_are_skipped_and_named(small_voc, tmp_path):
    records = bad_copy(small_voc, tmp_path / "voc")
    out = tmp_path / "e"
    result = CliRunner().invoke(main, ["evaluate", "detect", str(tmp_path / "voc"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 3 and metrics["faces"] == 24  # the same as without the bad records
    skipped = {json_item["file"].rsplit("/", 1)[-1]: json_item["reason"] for json_item in metrics["skipped"]}
    assert set(skipped) == set(records) - {"broken_image.xml"} | {"broken.png"}
    assert "not valid XML" in skipped["malformed.xml"] and "no <filename>" in skipped["no_filename.xml"]
    assert "inverted box" in skipped["bad_box.xml"] and "numeric" in skipped["text_box.xml"]
    assert "does not exist" in skipped["missing_image.xml"]
    assert "6 image(s) left out" in result.output


@pytest.mark.parametrize("line, reason", [("garbage", "is not 'class cx cy w h'"), ("3 0.5 0.5 0.1 0.1", "class 3"),
                                          ("-1 0.5 0.5 0.1 0.1", "class -1"), (b"\xff\xfe\x00\x01", "not a text file"),
                                          ("0 0.5 0.5 0 0.1", "inverted box")])
def test_bad_yolo_records_are_skipped_and_named(small_voc, tmp_path, line, reason):
    as_yolo(small_voc, tmp_path / "yolo")
    label = tmp_path / "yolo" / "labels" / "maksssksksss11.txt"
    if isinstance(line, bytes):
        label.write_bytes(line)
    else:
        label.write_text(label.read_text() + "\n" + line)
    out = tmp_path / "e"
    result = CliRunner().invoke(main, ["evaluate", "detect", str(tmp_path / "yolo"), "--out", str(out), "--format",
                                       "yolo", "--classifier-only"])
    assert result.exit_code == 0, result.output
    [skipped] = json.loads((out / "metrics.json").read_text())["skipped"]
    assert skipped["file"].endswith("maksssksksss11.txt") and reason in skipped["reason"]


def test_unreadable_datasets_are_usage_errors(small_voc, tmp_path):
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    runs = {"no annotations": [str(empty)], "no yolo labels": [str(empty), "--format", "yolo"]}
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "annotations").mkdir()
    (tmp_path / "none" / "annotations" / "x.xml").write_text("<annotation>")
    runs["nothing readable"] = [str(tmp_path / "none")]
    for name, args in runs.items():
        result = CliRunner().invoke(main, ["evaluate", "detect", *args, "--out", str(tmp_path / "e"), "--classifier-only"])
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output and str(tmp_path) in result.output
