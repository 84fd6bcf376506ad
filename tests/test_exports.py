"""`annotate --save ...`: label files, COCO, JSON lines and crops, read back by the tools that use them."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import maskmodel
from maskmodel.cli.main import main
from helpers import CROWD_DEV, write_image
from maskmodel.zoo import DEFAULT_CLASSIFIER

CLASSES = list(maskmodel.model_info(DEFAULT_CLASSIFIER).classes)  # the classifier's, in its order

PHOTOS = ["maksssksksss148.png", "maksssksksss695.png", "maksssksksss296.png"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One annotate run over three crowd-dev photos (one in a sub-folder) and a blank image, every export on."""
    root = tmp_path_factory.mktemp("exports")
    photos = root / "photos"
    (photos / "street").mkdir(parents=True)
    for index, name in enumerate(PHOTOS):
        target = photos / "street" / name if index == 2 else photos / name
        target.write_bytes((CROWD_DEV / "images" / name).read_bytes())
    write_image(photos / "wall.png", np.full((90, 120, 3), 200, np.uint8))
    out = root / "out"
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(out), "-q", "--save", "yolo",
                                       "--save", "voc", "--save", "coco", "--save-json", "--save-crops"])
    assert result.exit_code == 0, result.output
    return photos, out


def test_files_and_records(run):
    _, out = run
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["path"] for r in records) == sorted(["maksssksksss148.png", "maksssksksss695.png",
                                                         "street/maksssksksss296.png", "wall.png"])
    faces = sum(len(r["faces"]) for r in records)
    assert faces > 20 and all(set(f["probabilities"]) == set(CLASSES) for r in records
                              for f in r["faces"])
    assert (out / "labels" / "wall.txt").read_text() == ""  # an image without faces has an empty label file
    assert (out / "labels" / "street" / "maksssksksss296.txt").is_file()
    assert (out / "classes.txt").read_text().split() == CLASSES
    crops = sorted((out / "crops").rglob("*.jpg"))
    assert len(crops) == faces
    by_label = {f"{r['path']}_{f['face']}": f["label"] for r in records for f in r["faces"]}
    for crop in crops:
        label, *rest = crop.relative_to(out / "crops").with_suffix("").parts
        assert by_label["/".join(rest)] == label
        assert cv2.imread(str(crop)).shape[0] >= 8
    # every file maskmodel wrote is recorded, so --overwrite removes exactly those
    entries = [json.loads(line) for line in (out / ".maskmodel" / "written.jsonl").read_text().splitlines()]
    written = {entry if isinstance(entry, str) else entry["name"] for entry in entries}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".maskmodel" not in p.parts}
    assert on_disk - written == {"report.csv", "summary.json"}


@pytest.mark.parametrize(("data_format", "jobs"), [("yolo", "2"), ("voc", "1")])
def test_labels_read_back_by_evaluate_detect(run, tmp_path, data_format, jobs):
    """Evaluating the same pipeline against its own saved labels finds every face with its label; its
    predictions are saved as COCO, and a non-empty --out is refused."""
    photos, out = run
    args = ["evaluate", "detect", str(out), "--format", data_format, "--images", str(photos), "--out",
            str(tmp_path / "metrics"), "--jobs", jobs]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics" / "metrics.json").read_text())
    assert metrics["skipped"] == []
    assert metrics["recall"] == pytest.approx(1.0) and metrics["precision"] == pytest.approx(1.0)
    assert metrics["label_accuracy_on_matched"] == pytest.approx(1.0)
    saved = json.loads((tmp_path / "metrics" / "predictions.coco.json").read_text())
    assert len(saved["images"]) == 4 and len(saved["annotations"]) == metrics["predictions"] > 20
    again = CliRunner().invoke(main, args, prog_name="maskmodel")
    assert again.exit_code == 2 and "not empty" in again.output
    assert again.output.startswith("Usage: maskmodel evaluate detect [OPTIONS]")  # not the group's usage


def test_coco_loads_in_pycocotools(run):
    pytest.importorskip("pycocotools", reason="pycocotools is a test-time package: pip install '.[dev]'")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _, out = run
    truth = COCO(str(out / "predictions.coco.json"))
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(truth.getImgIds()) == 4 and len(truth.getAnnIds()) == sum(len(r["faces"]) for r in records)
    assert [c["name"] for c in truth.loadCats(truth.getCatIds())] == CLASSES
    detections = truth.loadRes(truth.dataset["annotations"])  # the annotations are a COCO results list
    evaluation = COCOeval(truth, detections, "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[1] == pytest.approx(1.0)  # AP50 of the predictions against themselves


def test_resume_gives_the_same_exports_and_overwrite_removes_them(run, tmp_path):
    photos, out = run
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix in (".txt", ".xml")}
    again = tmp_path / "again"
    args = ["annotate", str(photos), "--out", str(again), "-q", "--save", "yolo", "--save", "voc", "--save", "coco"]
    assert CliRunner().invoke(main, [*args, "--include", "maksssksksss148.png"]).exit_code == 0
    assert CliRunner().invoke(main, [*args, "--resume"]).exit_code == 0
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file() and p.suffix in (".txt", ".xml")}
    assert second == first  # label files of the images of both runs, and classes.txt
    foreign = again / "labels" / "notes.txt"
    foreign.write_text("mine")
    assert CliRunner().invoke(main, ["annotate", str(photos / "wall.png"), "--out", str(again), "-q",
                                     "--overwrite"]).exit_code == 0
    assert not (again / "labels" / "maksssksksss148.txt").exists() and not (again / "predictions.coco.json").exists()
    assert foreign.read_text() == "mine"


def test_shared_label_names_and_unknown_crop_classes(tmp_path):
    """a.jpg and a.png share labels/a.txt: the first in the report keeps it, the other is named in
    summary.json; a crop class the classifier does not have is a usage error before any work."""
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "a.jpg", cv2.imread(str(CROWD_DEV / "images" / PHOTOS[0])))
    write_image(photos / "a.png", np.full((60, 80, 3), 200, np.uint8))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(out), "-q", "--save", "yolo"])
    assert result.exit_code == 0, result.output
    assert len((out / "labels" / "a.txt").read_text().splitlines()) >= 3  # a.jpg's faces, not a.png's none
    refused = json.loads((out / "summary.json").read_text())["exports_refused"]
    assert refused == ["labels/a.txt: also the label file of a.jpg (same folder and stem)"]
    bad = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(tmp_path / "bad"), "--save-crops", "hats"])
    assert bad.exit_code == 2 and "hats" in bad.output and not (tmp_path / "bad").exists()


def test_exports_never_write_through_a_symlink(tmp_path):
    """A symlink put in place of labels/ is not written through: those files are refused and named."""
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "wall.png", np.full((60, 80, 3), 200, np.uint8))
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ["annotate", str(photos), "--out", str(out), "-q", "--save", "yolo"]
    assert CliRunner().invoke(main, args).exit_code == 0
    (out / "labels" / "wall.txt").unlink()
    (out / "labels").rmdir()
    (out / "labels").symlink_to(elsewhere, target_is_directory=True)
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert list(elsewhere.iterdir()) == []
    refused = json.loads((out / "summary.json").read_text())["exports_refused"]
    assert len(refused) == 1 and refused[0].startswith("labels/wall.txt: cannot write it")
    assert (out / "classes.txt").is_file() and (out / "report.html").is_file()


def test_an_export_never_replaces_an_annotated_copy(tmp_path):
    """An input at crops/<label>/a.jpg_0.jpg keeps its annotated copy; the crop of a.jpg's face 0 is refused."""
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "a.jpg", cv2.imread(str(CROWD_DEV / "images" / PHOTOS[0])))
    first = tmp_path / "first"
    assert CliRunner().invoke(main, ["annotate", str(photos), "--out", str(first), "-q", "--save-crops"]).exit_code == 0
    crop = next(p for p in (first / "crops").rglob("a.jpg_0.jpg")).relative_to(first).as_posix()
    write_image(photos / crop, np.full((70, 90, 3), 90, np.uint8))  # not square, like no crop
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["annotate", str(photos), "--out", str(out), "-q", "--save-crops"]).exit_code == 0
    copy = cv2.imread(str(out / crop))
    assert copy.shape == (70, 90, 3) and abs(int(copy[-1, -1, 0]) - 90) <= 2  # the input's copy, legend top left
    refused = json.loads((out / "summary.json").read_text())["exports_refused"]
    assert refused == [f"{crop}: the annotated copy of an input has this name"]
