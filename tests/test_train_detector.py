"""`maskmodel train-detector` (issue 42): the loss, a smoke fine-tune whose run annotates a photo, resume,
the run folder's safety, and bad face-box data refused in one line before anything is written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import CROWD_DEV, FACE_MODELS, crowd_images

pytest.importorskip("tensorflow")

from maskmodel.cli.main import main  # noqa: E402
from maskmodel.training.detector_data import read_face_boxes  # noqa: E402

PUBLISHED = FACE_MODELS / "centerface_bnmerged.onnx"


def voc_copy(folder: Path, count: int = 4) -> Path:
    """`count` crowd-dev photos and their VOC files, copied (never linked) into `folder`."""
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    for image in crowd_images(count):
        shutil.copyfile(image, folder / "images" / image.name)
        shutil.copyfile(CROWD_DEV / "annotations" / f"{image.stem}.xml", folder / "annotations" / f"{image.stem}.xml")
    return folder


def test_the_loss_goes_down_on_a_fixed_batch(tmp_path):
    import keras
    import tensorflow as tf

    from maskmodel.training.detector_data import training_photos
    from maskmodel.training.detector_model import port_centerface
    from maskmodel.training.detector_targets import centernet_loss
    from maskmodel.training.train_detector import DetectorTrainConfig, _batch

    images = read_face_boxes(voc_copy(tmp_path / "data"))
    config = DetectorTrainConfig(batch_size=2, input_size=256)
    pixels, targets = _batch(training_photos(images, {}), config, 0)
    model = port_centerface(PUBLISHED)
    optimizer = keras.optimizers.Adam(1e-3)
    losses = []
    for _ in range(4):
        with tf.GradientTape() as tape:
            loss = centernet_loss(model(pixels, training=True), targets)["loss"]
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        losses.append(float(loss))
    assert losses[-1] < losses[0], losses


def test_a_student_starts_near_the_published_maps(tmp_path):
    """Issue 43: a width-0.35 student gets the published neck and heads and the least-squares fit of the
    published features into them; its first features are within the teacher's own scale (random 1x1
    convolutions into the copied neck gave errors ~900x the features' mean square and a saturated heat map)."""
    from maskmodel.training.detector_data import training_photos
    from maskmodel.training.detector_model import (build_centerface, copy_neck_and_heads, fit_neck_inputs,
                                                   port_centerface, with_neck_taps)
    from maskmodel.training.detector_targets import distillation_loss, feature_loss
    from maskmodel.training.train_detector import DetectorTrainConfig, _batch

    photos = training_photos(read_face_boxes(voc_copy(tmp_path / "data")), {})
    config = DetectorTrainConfig(batch_size=2, input_size=256)
    fitting, checking = [_batch(photos, config, step)[0] for step in (0, 1)], _batch(photos, config, 2)[0]
    teacher = port_centerface(PUBLISHED)
    maps, taps = with_neck_taps(teacher)(checking)

    def start(fit: bool) -> tuple[float, float]:
        student = build_centerface(0.35, weights="imagenet", activation="relu6")
        copy_neck_and_heads(teacher, student)
        if fit:
            fit_neck_inputs(teacher, student, fitting)
        outputs, student_taps = with_neck_taps(student)(checking)
        heat = distillation_loss(outputs, {f"teacher_{k}": v for k, v in maps.items()})["distill_heat"]
        return float(feature_loss(student_taps, taps)["features"]), float(heat)

    fitted, unfitted = start(True), start(False)
    assert fitted[0] < 4.0 < unfitted[0] and fitted[1] < unfitted[1], (fitted, unfitted)


def test_targets_put_a_peak_at_each_face_and_ignore_unlabelled_ones():
    from maskmodel.training.detector_targets import make_targets

    targets = make_targets(np.array([[40, 40, 82, 90]], np.float32), np.array([[200, 200, 240, 240]], np.float32), 256, 256)
    heat, weight = targets["heat"][..., 0], targets["heat_weight"][..., 0]
    # centre (x 61, y 65) at stride 4: cell (y, x) = round(65 / 4 - 0.5), round(61 / 4 - 0.5) = (16, 15)
    assert heat.max() == 1.0 and np.argwhere(heat == 1.0).tolist() == [[16, 15]]
    assert weight[50:60, 50:60].max() == 0 and weight[16, 15] == 1
    assert targets["face_weight"].sum() == 1 and targets["index"][0] == 16 * 64 + 15
    np.testing.assert_allclose(targets["size"][0], np.log([50 / 4, 42 / 4]), rtol=1e-6)
    np.testing.assert_allclose(targets["offset"][0], [-0.25, -0.25], atol=1e-6)


def test_smoke_fine_tune_writes_a_run_that_annotates_a_photo(tmp_path):
    data = voc_copy(tmp_path / "data", 12)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train-detector", str(data), "--out", str(run), "--smoke", "--quiet"])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "model.json").read_text())
    assert card["task"] == "face-detection" and card["files"]["onnx"]["file"] == "model.onnx"
    assert {"model.onnx", "model.keras", "metrics.json", "train.log"} <= {p.name for p in run.iterdir()}
    assert not (run / ".checkpoint").exists()
    photo = tmp_path / "photo"
    photo.mkdir()
    shutil.copyfile(crowd_images(13)[-1], photo / "x.png")
    out = tmp_path / "annotated"
    result = CliRunner().invoke(main, ["annotate", str(photo), "--out", str(out), "--face-detector", str(run), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["detector"]["version"] == "local"
    assert summary["settings"]["detector"]["path"] == str(run.resolve())
    assert (out / "x.png").is_file()

    (run / "model.onnx").write_bytes((run / "model.onnx").read_bytes()[:-1] + b"\0")  # damaged after training
    result = CliRunner().invoke(main, ["predict", str(photo / "x.png"), "--face-detector", str(run)])
    assert result.exit_code == 2 and "does not match the sha256 of its card" in result.output


def test_a_killed_run_resumes_where_its_checkpoint_is(tmp_path):
    from maskmodel.training.train_detector import DetectorTrainConfig, train_detector

    images = read_face_boxes(voc_copy(tmp_path / "data"))
    run = tmp_path / "run"
    run.mkdir()
    config = DetectorTrainConfig(steps=3, batch_size=1, input_size=128, checkpoint_every=1)

    def killed_at_step_2(line: str) -> None:
        if line.startswith("step 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_detector(images, [], run, PUBLISHED, config, progress=False, log=killed_at_step_2)
    assert json.loads((run / ".checkpoint" / "state.json").read_text())["step"] == 1
    lines: list[str] = []
    train_detector(images, [], run, PUBLISHED, config, resume=True, progress=False, log=lines.append)
    assert "resuming at step 1 of 3" in lines
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["2/3", "3/3"]
    assert (run / "model.onnx").is_file() and not (run / ".checkpoint").exists()
    other = DetectorTrainConfig(steps=4, batch_size=1, input_size=128, checkpoint_every=1)
    with pytest.raises(KeyboardInterrupt):
        train_detector(images, [], run, PUBLISHED, other, progress=False, log=killed_at_step_2)
    from maskmodel.errors import UsageError

    with pytest.raises(UsageError, match="other settings"):
        train_detector(images, [], run, PUBLISHED, config, resume=True, progress=False)


def test_a_run_folder_never_writes_through_a_planted_link(tmp_path):
    from maskmodel.training.train_detector import _write_json

    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").symlink_to(outside)
    os.link(outside, run / "model.json")
    _write_json(run / "metrics.json", {"a": 1})
    _write_json(run / "model.json", {"b": 2})
    assert outside.read_text() == "keep me"
    assert json.loads((run / "metrics.json").read_text()) == {"a": 1} and not (run / "metrics.json").is_symlink()
    from maskmodel.errors import UsageError
    from maskmodel.training.train_detector import _checkpoint_folder

    (tmp_path / "elsewhere").mkdir()
    (run / ".checkpoint").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="not a folder"):
        _checkpoint_folder(run / ".checkpoint")


def _xml(filename: str, boxes: list[tuple], size: tuple[int, int] | None = (400, 300)) -> str:
    objects = "".join(f"<object><name>face</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                      f"<ymax>{d}</ymax></bndbox></object>" for a, b, c, d in boxes)
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height></size>" if size else ""
    return f"<annotation><filename>{filename}</filename>{size_xml}{objects}</annotation>"


@pytest.mark.parametrize("case, expected", [
    ("no boxes", "has no readable annotated face"),
    ("zero area", "empty or inverted box"),
    ("outside", "lie wholly outside the image"),
    ("unreadable", "not valid XML"),
    ("missing image", "does not exist"),
    ("class list", "class 3 is not in 0..0"),
])
def test_bad_face_box_data_is_one_line_exit_2_and_nothing_written(tmp_path, case, expected):
    data = voc_copy(tmp_path / "data", 1)
    xml = next((data / "annotations").iterdir())
    image = next((data / "images").iterdir()).name
    if case == "no boxes":
        xml.write_text(_xml(image, []))
    elif case == "zero area":
        xml.write_text(_xml(image, [(10, 10, 10, 40)]))
    elif case == "outside":
        xml.write_text(_xml(image, [(10, 10, 40, 40), (500, 400, 540, 440)]))
    elif case == "unreadable":
        xml.write_text("<annotation><filename>")
    elif case == "missing image":
        xml.write_text(_xml("gone.png", [(10, 10, 40, 40)]))
    else:  # a YOLO set whose label names a class the class list does not have
        shutil.rmtree(data / "annotations")
        (data / "labels").mkdir()
        (data / "labels" / f"{Path(image).stem}.txt").write_text("3 0.5 0.5 0.1 0.1\n")
        (data / "classes.txt").write_text("face\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train-detector", str(data), "--out", str(out), "--smoke"])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_yolo_and_coco_sets_read_the_same_boxes_as_voc(tmp_path):
    import cv2

    voc = voc_copy(tmp_path / "voc", 2)
    reference = read_face_boxes(voc)
    yolo = tmp_path / "yolo"
    shutil.copytree(voc / "images", yolo / "images")
    (yolo / "labels").mkdir()
    (yolo / "classes.txt").write_text("face\n")
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "face"}]}
    for number, annotated in enumerate(reference):
        height, width = cv2.imread(str(annotated.image_path)).shape[:2]
        lines = []
        coco["images"].append({"id": number, "file_name": annotated.image_path.name, "width": width, "height": height})
        for x1, y1, x2, y2 in (face.box for face in annotated.faces):
            lines.append(f"0 {(x1 + x2) / 2 / width} {(y1 + y2) / 2 / height} {(x2 - x1) / width} {(y2 - y1) / height}")
            coco["annotations"].append({"image_id": number, "bbox": [x1, y1, x2 - x1, y2 - y1], "category_id": 1})
        (yolo / "labels" / f"{annotated.image_path.stem}.txt").write_text("\n".join(lines) + "\n")
    (yolo / "images.json").write_text(json.dumps(coco))
    for images in (read_face_boxes(yolo), read_face_boxes(yolo / "images.json")):
        assert [i.image_path.name for i in images] == [i.image_path.name for i in reference]
        for got, expected in zip(images, reference):
            np.testing.assert_allclose([f.box for f in got.faces], [f.box for f in expected.faces], atol=1e-3)


def test_a_student_learns_from_the_published_maps_and_its_run_annotates_a_photo(tmp_path):
    """--student-alpha: a width-0.35 CenterFace from ImageNet, taught the published one's maps (issue 43's start)."""
    data = voc_copy(tmp_path / "data", 12)
    run = tmp_path / "student"
    result = CliRunner().invoke(main, ["train-detector", str(data), "--out", str(run), "--smoke", "--quiet",
                                       "--student-alpha", "0.35"])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "model.json").read_text())
    assert card["training"]["student_alpha"] == 0.35 and "width 0.35" in card["description"]
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert history and history[-1]["distill"] > 0
    photo = tmp_path / "photo"
    photo.mkdir()
    shutil.copyfile(crowd_images(13)[-1], photo / "x.png")
    result = CliRunner().invoke(main, ["annotate", str(photo), "--out", str(tmp_path / "out"), "--face-detector", str(run),
                                       "-q"])
    assert result.exit_code == 0, result.output


def test_distillation_loss_is_zero_only_where_the_student_is_the_teacher():
    import tensorflow as tf

    from maskmodel.training.detector_targets import distillation_loss

    rng = np.random.default_rng(0)
    maps = {"heat": rng.uniform(0.01, 0.99, (1, 8, 8, 1)), "scale": rng.normal(size=(1, 8, 8, 2)),
            "offset": rng.normal(size=(1, 8, 8, 2)), "landmarks": rng.normal(size=(1, 8, 8, 10))}
    outputs = {name: tf.constant(value, tf.float32) for name, value in maps.items()}
    same = {f"teacher_{name}": tf.constant(value, tf.float32) for name, value in maps.items()}
    moved = {**same, "teacher_scale": same["teacher_scale"] + 1.0}
    assert float(distillation_loss(outputs, same)["distill_box"]) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(outputs, moved)["distill_box"]) == pytest.approx(2.0, rel=1e-5)  # 2 channels, 1 each
