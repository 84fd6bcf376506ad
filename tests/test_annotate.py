"""The main job end to end: real detector, real published classifier, real photos and odd files."""

import csv
import hashlib
import json
import struct

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import maskmodel
from maskmodel.cli.main import main
from helpers import CROWD_DEV, crowd_images, write_image
from maskmodel.evaluation.annotations import read_voc
from maskmodel.io.imageio import read_image

# A street photo with five annotated faces of 40 px or more, masked and unmasked.
MIXED = CROWD_DEV / "images" / "maksssksksss148.png"


def iou(a, b) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def jpeg_with_exif_orientation(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose EXIF says to rotate it (orientation 6: 90 degrees clockwise)."""
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = encoded.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


@pytest.fixture()
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub dir").mkdir(parents=True)
    (folder / MIXED.name).write_bytes(MIXED.read_bytes())
    (folder / "sub dir" / "straße, 2.png").write_bytes(crowd_images(1)[0].read_bytes())
    write_image(folder / "empty_wall.png", np.full((120, 160, 3), 200, np.uint8))
    (folder / "truncated.jpg").write_bytes(cv2.imencode(".jpg", cv2.imread(str(MIXED)))[1].tobytes()[:600])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.png").write_text("hello, not an image")
    write_image(folder / "deep16.png", (np.random.default_rng(0).integers(0, 65535, (50, 60, 3))).astype(np.uint16))
    write_image(folder / "rgba.png", np.dstack([np.full((40, 50, 3), 90, np.uint8), np.full((40, 50), 128, np.uint8)]))
    write_image(folder / "gray.png", np.full((40, 50), 77, np.uint8))
    (folder / "rotated.jpg").write_bytes(jpeg_with_exif_orientation(np.zeros((40, 80, 3), np.uint8), 6))
    return folder


def _digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "r.jpg"
    path.write_bytes(jpeg_with_exif_orientation(np.zeros((40, 80, 3), np.uint8), 6))
    assert read_image(path).shape[:2] == (80, 40)


def test_annotate_folder(photo_folder, tmp_path):
    before = _digest(photo_folder)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(photo_folder), "--out", str(out)])
    assert result.exit_code == 1, result.output  # some files failed
    assert _digest(photo_folder) == before  # originals untouched
    with open(out / "report.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    status = {}
    for row in rows:
        status.setdefault(row["path"], set()).add(row["status"])
    assert set(status) == {str(p.relative_to(photo_folder)) for p in photo_folder.rglob("*") if p.is_file()}
    for name in ("truncated.jpg", "zero.jpg", "text.png"):
        assert status[name] == {"error"}, name
    for name in ("empty_wall.png", "deep16.png", "rgba.png", "gray.png", "rotated.jpg"):
        assert status[name] == {"no_face"}, name
    faces = [r for r in rows if r["path"] == MIXED.name]
    assert status[MIXED.name] == {"ok"} and len(faces) >= 5
    assert all(abs(float(r["p_with_mask"]) + float(r["p_without_mask"]) - 1) < 1e-3 for r in faces)
    assert {r["model"] for r in faces} == {maskmodel.model_info(maskmodel.DEFAULT_CLASSIFIER).spec}
    assert {r["detector"] for r in faces} == {"centerface"}
    found = [([float(r[k]) for k in ("x1", "y1", "x2", "y2")], r["label"]) for r in faces]
    annotated = [f for f in read_voc(CROWD_DEV / "annotations" / "maksssksksss148.xml", CROWD_DEV / "images").faces
                 if f.box[2] - f.box[0] >= 40 and f.label in ("with_mask", "without_mask")]
    assert len(annotated) == 5
    agree = sum(any(iou(box, face.box) >= 0.4 and label == face.label for box, label in found) for face in annotated)
    assert agree >= 4  # a weak correctness check on a real photo: found and labelled as annotated
    assert [r for r in rows if r["path"] == "rotated.jpg"][0]["width"] == "40"
    assert (out / "sub dir" / "straße, 2.png").is_file()
    drawn = cv2.imread(str(out / MIXED.name))
    assert drawn.shape == cv2.imread(str(MIXED)).shape and not np.array_equal(drawn, cv2.imread(str(MIXED)))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == len(status) and summary["errors"] == 3
    assert "truncated.jpg" in result.output and "zero.jpg" in result.output


def test_out_equal_to_input_and_non_empty_out_are_refused(photo_folder, tmp_path):
    same = CliRunner().invoke(main, ["annotate", str(photo_folder), "--out", str(photo_folder)])
    assert same.exit_code == 2 and "--out" in same.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    full = CliRunner().invoke(main, ["annotate", str(photo_folder), "--out", str(tmp_path / "full")])
    assert full.exit_code == 2 and "--resume" in full.output


def test_output_inside_input_is_not_crawled_and_resume_skips_done(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for photo in crowd_images(2):
        (folder / photo.name).write_bytes(photo.read_bytes())
    out = folder / "annotated"
    assert CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out), "-q"]).exit_code == 0
    first = (out / "report.csv").read_text()
    again = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out), "--resume", "-q"])
    assert again.exit_code == 0
    assert (out / "report.csv").read_text() == first  # nothing new, nothing duplicated
    assert not any("annotated" in line.split(",")[0] for line in first.splitlines())


def test_jobs_give_the_same_report(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for photo in crowd_images(4):
        (folder / photo.name).write_bytes(photo.read_bytes())
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        assert CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out), "--jobs", jobs, "-q"]).exit_code == 0
        reports.append((out / "report.csv").read_text())
    assert reports[0] == reports[1]


def test_predict_prints_json():
    result = CliRunner().invoke(main, ["predict", str(crowd_images(1)[0])])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["faces"] and {"box", "score", "label", "probabilities"} <= set(data["faces"][0])


def test_pixel_limit_refuses_large_images(tmp_path):
    folder = tmp_path / "in"
    write_image(folder / "big.png", np.zeros((300, 400, 3), np.uint8))
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(tmp_path / "out"), "--max-pixels", "100000"])
    assert result.exit_code == 1
    row = next(csv.DictReader(open(tmp_path / "out" / "report.csv", encoding="utf-8")))
    assert row["status"] == "error" and "400x300 pixels, more than the limit of 100000" in row["message"]


def test_blur_dry_run_and_format(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / MIXED.name).write_bytes(MIXED.read_bytes())
    plain, blurred, dry = tmp_path / "plain", tmp_path / "blurred", tmp_path / "dry"
    assert CliRunner().invoke(main, ["annotate", str(folder), "--out", str(plain), "-q", "--format", "jpg"]).exit_code == 0
    assert CliRunner().invoke(main, ["annotate", str(folder), "--out", str(blurred), "-q", "--blur-faces",
                                     "--labels", "none"]).exit_code == 0  # captions would cover faces being measured
    assert CliRunner().invoke(main, ["annotate", str(folder), "--out", str(dry), "-q", "--dry-run"]).exit_code == 0
    assert (plain / (MIXED.name + ".jpg")).is_file() and not (plain / MIXED.name).exists()
    assert sorted(p.name for p in dry.iterdir()) == [".maskmodel", "report.csv", "report.html", "summary.json"]
    rows = list(csv.DictReader(open(blurred / "report.csv", encoding="utf-8")))
    largest = max(rows, key=lambda r: (float(r["x2"]) - float(r["x1"])) * (float(r["y2"]) - float(r["y1"])))
    x1, y1, x2, y2 = (int(float(largest[k])) for k in ("x1", "y1", "x2", "y2"))
    top = y1 + 20  # below its own label, which may reach into the box
    original = cv2.imread(str(MIXED))[top : y2 - 3, x1 + 3 : x2 - 3].astype(float)
    face = cv2.imread(str(blurred / MIXED.name))[top : y2 - 3, x1 + 3 : x2 - 3].astype(float)
    assert cv2.Laplacian(face, cv2.CV_64F).var() < 0.2 * cv2.Laplacian(original, cv2.CV_64F).var()


def test_symlink_loop_and_hidden_files(tmp_path):
    folder = tmp_path / "in"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "face.png").write_bytes(MIXED.read_bytes())
    (folder / "a" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / ".hidden.png").write_bytes(MIXED.read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out), "-q", "--dry-run"])
    assert result.exit_code == 0, result.output
    paths = {row["path"] for row in csv.DictReader(open(out / "report.csv", encoding="utf-8"))}
    assert paths == {"a/face.png"}


def test_a_usage_error_shows_the_commands_usage_line(tmp_path):
    """A non-empty --out is refused with `annotate`'s usage line, not the group's."""
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "a.png", np.full((48, 64, 3), 90, np.uint8))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["annotate", str(tmp_path / "in"), "--out", str(tmp_path / "out")],
                                prog_name="maskmodel")
    assert result.exit_code == 2 and "not empty" in result.output
    assert result.output.startswith("Usage: maskmodel annotate [OPTIONS] INPUTS...\n"), result.output


def test_no_images_to_annotate_is_a_usage_error_and_no_message_says_none(tmp_path):
    empty, texts = tmp_path / "empty", tmp_path / "texts"
    empty.mkdir()
    texts.mkdir()
    (texts / "notes.txt").write_text("not an image")
    for inputs in ([str(empty)], [str(texts)], [str(texts), str(empty)]):
        out = tmp_path / "out"
        result = CliRunner().invoke(main, ["annotate", *inputs, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert f"no images or videos found in {', '.join(inputs)}" in result.output
        assert not out.exists()  # a usage error writes nothing
    write_image(texts / "wall.png", np.full((120, 160, 3), 200, np.uint8))
    filtered = CliRunner().invoke(main, ["annotate", str(texts), "--out", str(tmp_path / "out"), "--include", "*.jpg"])
    assert filtered.exit_code == 2 and "no images or videos matching --include/--exclude found" in filtered.output
    faceless = CliRunner().invoke(main, ["annotate", str(texts), "--out", str(tmp_path / "out")])
    assert faceless.exit_code == 0, faceless.output
    assert "0 faces" in faceless.output and "None" not in faceless.output
