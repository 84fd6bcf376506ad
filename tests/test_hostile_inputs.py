"""The second round of hostile inputs (issue 29): nothing lost outside --out, no wrong result served
silently, no hang, no traceback. One regression test per case of the issue (its number in the name)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import maskmodel
from helpers import CROWD_DEV, tiny_classifier, write_image
from maskmodel.cli.main import main
from maskmodel.errors import MaskmodelError, ModelCheckError, UsageError

FACES = CROWD_DEV / "images" / "maksssksksss148.png"  # five faces


def cli(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def one_line_error(result, code):
    """The result failed with `code` and a one-line message, no traceback."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(FACES, folder / "a.png")
    return folder


# --- 1: the record of what a run wrote is checked before --overwrite removes anything -----------

@pytest.mark.parametrize("entry", ["{victim}", "../victim.txt", "sub/../../victim.txt", ".maskmodel/run.json", "", 7])
def test_1_overwrite_never_removes_a_file_named_by_a_hostile_record(tmp_path, photos, entry):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    assert cli("annotate", photos, "--out", out, "-q").exit_code == 0
    if isinstance(entry, str):
        entry = entry.format(victim=victim)
    with open(out / ".maskmodel" / "written.jsonl", "a") as journal:
        journal.write(json.dumps(entry) + "\n")
    message = one_line_error(cli("annotate", photos, "--out", out, "-q", "--overwrite"), 2)
    assert "written.jsonl is damaged" in message
    assert victim.read_text() == "keep me"
    assert (out / "a.png").is_file() and (out / ".maskmodel" / "run.json").is_file()  # nothing removed


# --- 4: crops of a.jpg and a.png never share a name -----------------------------------------------

def test_4_crops_of_inputs_with_the_same_stem_are_all_kept(tmp_path, photos):
    shutil.copy(FACES, photos / "a.jpg")
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q", "--save-crops")
    assert result.exit_code == 0, result.output
    crops = sorted(path.name for path in (out / "crops").rglob("*.jpg"))
    faces = sum(1 for line in (out / "report.csv").read_text().splitlines()[1:] if ",ok," in line)
    assert len(crops) == faces >= 6
    assert {name.rsplit("_", 1)[0] for name in crops} == {"a.jpg", "a.png"}
    assert json.loads((out / "summary.json").read_text())["exports_refused"] == []


# --- 3 and 6: models are checked when they load ----------------------------------------------------

@pytest.mark.parametrize("classes", [["../../../x", "y"], ["with\nmask", "without"], ["a", "a"], ["..", "b"],
                                     ["a/b", "c"], ["x" * 65, "y"], ["only"], ["\u202eevil", "b"], "ab",
                                     [1, 2], [".hidden", "b"]])
def test_3_class_names_are_checked_where_a_model_loads(tmp_path, photos, classes):
    model = tiny_classifier(tmp_path / "model")
    contract = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**contract, "classes": classes}))
    with pytest.raises(UsageError, match="not a usable model contract"):
        maskmodel.load(str(model))
    out = tmp_path / "out"
    message = one_line_error(cli("annotate", photos, "--out", out, "--model", model, "--save-crops", "--save", "yolo"), 2)
    assert "model.json" in message
    assert not out.exists() and not (tmp_path / "x").exists()


def test_3_a_good_contract_loads_and_annotates(tmp_path, photos):
    model = tiny_classifier(tmp_path / "model", classes=("masked", "bare", "chin strap"))
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q", "--model", model, "--save-crops", "--save", "yolo")
    assert result.exit_code == 0, result.output
    assert (out / "classes.txt").read_text() == "masked\nbare\nchin strap\n"


@pytest.mark.parametrize(("settings", "expected"), [
    ({"outputs": 1}, "1 outputs per face for 2 classes"),
    ({"outputs": 3}, "3 outputs per face for 2 classes"),
    ({"bias": float("nan")}, "not finite"),
    ({"softmax": False, "bias": 60.0}, "outside 0..1"),
])
@pytest.mark.parametrize("backend", ["opencv", "onnxruntime"])
def test_6_a_classifier_that_does_not_match_its_contract_is_refused_before_the_first_photo(tmp_path, photos,
                                                                                          settings, expected, backend):
    model = tiny_classifier(tmp_path / "model", **settings)
    with pytest.raises(ModelCheckError, match=expected):
        maskmodel.load(str(model), backend=backend)
    out = tmp_path / "out"
    message = one_line_error(cli("annotate", photos, "--out", out, "--model", model, "--backend", backend), 1)
    assert expected in message and not out.exists()
    # a sentence naming the file and the remedy; the class name only with --verbose (issue 37)
    assert "ModelCheckError" not in message and str(model) in message and "contract.json" in message
    assert "Error: ModelCheckError: " in one_line_error(cli("annotate", photos, "--out", out, "--model", model,
                                                            "--backend", backend, "--verbose"), 1)
    assert expected in one_line_error(cli("predict", photos / "a.png", "--model", model), 1)


# --- 14 (last part): a damaged file in the training crop cache is made again ----------------------

def test_14_a_truncated_png_in_the_crop_cache_does_not_break_later_runs(tmp_path):
    from maskmodel.detect.detector_config import one_face_detector
    from maskmodel.training.data import DatasetReport, Sample, build_crop_sets

    samples = [Sample(path, label, "train", sha256=f"{index:064x}") for index, (path, label) in
               enumerate([(FACES, "with_mask"), (CROWD_DEV / "images" / "maksssksksss695.png", "without_mask")])]
    detector, classes = one_face_detector(), ["with_mask", "without_mask"]
    first = build_crop_sets(samples, classes, detector, tmp_path, DatasetReport([], classes), progress=False)
    [folder] = tmp_path.iterdir()
    cached = sorted(folder.glob("*.png"))
    assert len(cached) == 2 and not list(folder.glob(".*"))  # no temporary file left
    cached[0].write_bytes(cached[0].read_bytes()[:300])  # what a killed run of an older version left
    again = build_crop_sets(samples, classes, detector, tmp_path, DatasetReport([], classes), progress=False)
    assert np.array_equal(again["train"].crops, first["train"].crops)
    assert cached[0].stat().st_size > 300  # written again, whole


# --- 2: watch and export never replace a file they did not make -----------------------------------

def _clip(path, frames=4):
    from maskmodel.video.frames import open_video_writer

    photo = cv2.resize(cv2.imread(str(FACES)), (160, 120))
    writer = open_video_writer(path, "MJPG", 8.0, 160, 120)
    for _ in range(frames):
        writer.write(photo)
    writer.release()
    return path


def test_2_watch_never_replaces_its_source_an_existing_file_or_a_symlink_target(tmp_path):
    source = _clip(tmp_path / "street.avi")
    kept = source.read_bytes()
    (tmp_path / "photo.avi").write_bytes(b"mine")
    elsewhere = tmp_path / "elsewhere.avi"
    (tmp_path / "link.avi").symlink_to(elsewhere)
    for out in (source, tmp_path / "photo.avi", tmp_path / "link.avi"):
        message = one_line_error(cli("watch", "--source", source, "--no-display", "--out", out), 2)
        assert "exists" in message
    assert source.read_bytes() == kept and (tmp_path / "photo.avi").read_bytes() == b"mine"
    assert not elsewhere.exists()
    result = cli("watch", "--source", source, "--no-display", "--out", tmp_path / "new.avi")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new.avi").stat().st_size > 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["link.avi", "new.avi", "photo.avi", "street.avi"]  # no temporary file left


def test_2_and_13_export_refuses_an_existing_file_and_damaged_models_in_one_line(tmp_path):
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"mine")
    message = one_line_error(cli("export", "mask-mobilenetv2-0.35", "--out", existing), 2)
    assert "exists: use --overwrite" in message and existing.read_bytes() == b"mine"
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes((Path(maskmodel.weights_path("mask-mobilenetv2-0.35", format="keras"))).read_bytes()[:500])
    message = one_line_error(cli("export", damaged, "--out", tmp_path / "new.onnx"), 1)
    assert "not a .keras model file" in message and not (tmp_path / "new.onnx").exists()


def test_13_export_of_a_keras_file_with_a_lambda_layer_is_one_line(tmp_path):
    keras = pytest.importorskip("keras")
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    message = one_line_error(cli("export", tmp_path / "lambda.keras", "--out", tmp_path / "new.onnx"), 1)
    assert "Lambda layer" in message and not (tmp_path / "new.onnx").exists()


# --- 7: a run remembers its configuration -----------------------------------------------------------

@pytest.mark.parametrize(("changed", "named"), [
    (["--face-detector", "yunet"], "detector.name"),
    (["--threshold", "0.8"], "detector.score_threshold"),
    (["--box-adjust", "crowd-dev"], "box_adjust.d"),
    (["--model", "mask-mobilenetv2-1.0"], "model"),
])
def test_7_resume_with_another_configuration_is_refused_naming_the_difference(tmp_path, photos, changed, named):
    out = tmp_path / "out"
    shutil.copy(FACES, photos / "b.png")
    assert cli("annotate", photos / "a.png", "--out", out, "-q").exit_code == 0
    before = (out / "report.csv").read_bytes()
    message = one_line_error(cli("annotate", photos, "--out", out, "-q", "--resume", *changed), 2)
    assert "--resume with other settings" in message and named in message
    assert (out / "report.csv").read_bytes() == before
    result = cli("annotate", photos, "--out", out, "-q", "--resume")  # the same settings: resumed
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "summary.json").read_text())["used"]["inputs"]) == 1


def test_7_resume_and_overwrite_together_are_refused(tmp_path, photos):
    out = tmp_path / "out"
    assert cli("annotate", photos, "--out", out, "-q").exit_code == 0
    message = one_line_error(cli("annotate", photos, "--out", out, "-q", "--resume", "--overwrite"), 2)
    assert "give one of them" in message


# --- 5 and 14: training run folders --------------------------------------------------------------------

@pytest.fixture
def training_data(tmp_path):
    for label in ("with_mask", "without_mask"):
        for index in range(3):
            write_image(tmp_path / "data" / label / f"{index}.png", np.full((64, 64, 3), 40 * index, np.uint8))
    return tmp_path / "data"


@pytest.mark.parametrize("inside", ["data/with_mask/run", "data", "data/with_mask"])
def test_5_a_run_folder_inside_the_training_data_is_refused(tmp_path, training_data, inside):
    before = sorted(training_data.rglob("*"))
    message = one_line_error(cli("train", training_data, "--out", tmp_path / inside, "--weights", "none"), 2)
    assert "inside the training data" in message
    assert sorted(training_data.rglob("*")) == before
    from maskmodel.detect.detector_config import one_face_detector
    from maskmodel.training.train import TrainConfig, train

    with pytest.raises(UsageError, match="inside the training data"):
        train([training_data], tmp_path / inside, one_face_detector(), TrainConfig(), progress=False)


def test_5_an_earlier_run_is_never_replaced_without_overwrite(tmp_path, training_data):
    from maskmodel.training.rundir import new_run_folder

    run = tmp_path / "run"
    assert new_run_folder(run, [training_data]) == run and run.is_dir()  # new
    assert new_run_folder(run, [training_data]) == run  # empty: used
    (run / "model.onnx").write_bytes(b"first")
    assert new_run_folder(run, [training_data]) == tmp_path / "run-2"
    (tmp_path / "run-2" / "model.onnx").write_bytes(b"second")
    assert new_run_folder(run, [training_data]) == tmp_path / "run-3"
    assert new_run_folder(run, [training_data], overwrite=True) == run
    assert (run / "model.onnx").read_bytes() == b"first"


@pytest.mark.parametrize(("args", "expected"), [
    (["--head-epochs", "0"], "at least 1 epoch"),
    (["--epochs", "0"], "0 is not in the range x>=1"),
    (["--out-file"], "is a file, not a run folder"),
    (["--long"], "cannot create the run folder"),
])
def test_14_bad_training_arguments_are_one_line(tmp_path, training_data, args, expected):
    out = tmp_path / "run"
    if args == ["--out-file"]:
        out, args = tmp_path / "file", []
        out.write_text("mine")
    elif args == ["--long"]:
        out, args = tmp_path / ("x" * 300) / "run", []
    message = one_line_error(cli("train", training_data, "--out", out, "--weights", "none", *args), 2)
    assert expected in message
    assert not (tmp_path / "run").exists()


# --- 9, 11, 12, 13: arguments are checked where they come in --------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("{}", "Expected DX,DY,SW,SH"), ("nan,0,1,1", "finite"), ("0,0,-1,1", "SW, SH in"), ("0,0,1,1e9", "SW, SH in"),
    ("file:{}", "numbers dx, dy"), ("file:[1, 2]", "numbers dx, dy"), ('file:{"dx": "0", "dy": 0, "sw": 1, "sh": 1}',
                                                                          "numbers dx, dy"),
    ('file:{"dx": NaN, "dy": 0, "sw": 1, "sh": 1}', "finite"), ("file:\xff", "not a box calibration file"),
    ("fifo", "not a regular file"),
])
def test_9_and_13_box_adjust_values_and_files_have_one_schema(tmp_path, photos, value, expected):
    if value.startswith("file:"):
        (tmp_path / "box.json").write_bytes(value[5:].encode("latin-1"))
        value = str(tmp_path / "box.json")
    elif value == "fifo":
        os.mkfifo(tmp_path / "box.json")
        value = str(tmp_path / "box.json")
    message = one_line_error(cli("annotate", photos, "--out", tmp_path / "out", "--box-adjust", value), 2)
    assert expected in message and not (tmp_path / "out").exists()
    from maskmodel.detect.boxstyle import BoxAdjust

    with pytest.raises(UsageError, match=expected):
        BoxAdjust.parse(value)


@pytest.mark.parametrize(("args", "expected"), [
    (["--scales", "100000"], "scales of 32 to 8192 px"),
    (["--scales", ",".join(["640"] * 9)], "1 to 8 scales"),
])
def test_11_sizes_have_bounds(tmp_path, photos, args, expected):
    message = one_line_error(cli("annotate", photos, "--out", tmp_path / "out", *args), 2)
    assert expected in message


def test_11_crop_margins_have_bounds():
    from maskmodel.classify.crops import CropPolicy

    for margin in (500, -0.1, float("nan")):
        with pytest.raises(UsageError, match="crop margin"):
            CropPolicy(margin=margin)
    assert CropPolicy(margin=2.0).margin == 2.0


def test_12_jobs_are_capped_at_the_cpus_with_a_note(tmp_path, photos):
    from maskmodel.batch.engines import available_cpus

    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(tmp_path / "out"), "-q", "--jobs", "10000"])
    assert result.exit_code == 0, result.output
    assert f"--jobs 10000 is more than the {available_cpus()} CPUs here: using {available_cpus()}" in result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["jobs"] == min(available_cpus(), summary["images"])  # nor more than the photos


# --- 8, 9, 10, 11, 12, 13: readers ----------------------------------------------------------------------------

@pytest.fixture
def no_hang():
    """Fail a test that blocks (a FIFO read) instead of hanging the suite."""
    import signal

    def stop(signum, frame):
        raise TimeoutError("blocked: a FIFO was read")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _voc(folder, boxes, file_name="a.png", size=True):
    write_image(folder / "images" / "a.png", np.full((80, 100, 3), 90, np.uint8))
    objects = "".join(f"<object><name>with_mask</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
                      f"<ymax>{y2}</ymax></bndbox></object>" for x1, y1, x2, y2 in boxes)
    size = "<size><width>100</width><height>80</height></size>" if size else ""
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    (folder / "annotations" / "a.xml").write_text(f"<annotation><filename>{file_name}</filename>{size}{objects}"
                                                  "</annotation>")
    return folder


def test_10_a_fifo_as_annotation_or_label_file_is_a_skipped_record_not_a_hang(tmp_path, no_hang):
    from maskmodel.evaluation.annotations import read_voc_folder, read_yolo_folder

    dataset = _voc(tmp_path / "voc", [(10, 10, 40, 40)])
    os.mkfifo(dataset / "annotations" / "b.xml")
    skipped = []
    [image] = read_voc_folder(dataset, skipped=skipped)
    assert skipped == [(str(dataset / "annotations" / "b.xml"), "not a regular file (a FIFO)")]
    (dataset / "labels").mkdir()
    (dataset / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    write_image(dataset / "images" / "b.png", np.full((80, 100, 3), 90, np.uint8))
    os.mkfifo(dataset / "labels" / "b.txt")
    skipped = []
    [image] = read_yolo_folder(dataset / "images", dataset / "labels", ["with_mask"], skipped)
    assert skipped == [(str(dataset / "labels" / "b.txt"), "not a regular file (a FIFO)")]


def test_10_a_fifo_in_the_detector_cache_is_named_not_a_hang(tmp_path, model_home, photos, no_hang):
    cached = model_home / "centerface_bnmerged.onnx"
    cached.unlink()
    os.mkfifo(cached)
    message = one_line_error(cli("annotate", photos, "--out", tmp_path / "out"), 1)
    assert "not a regular file (a FIFO)" in message


def test_9_and_11_annotated_boxes_are_clipped_to_the_image_and_counted(tmp_path):
    from maskmodel.evaluation.annotations import read_voc_folder, read_yolo_folder

    huge = (-1e12, -1e12, 1e12, 1e12)
    for size in (True, False):  # from <size>, else from the image's header
        dataset = _voc(tmp_path / f"voc{size}", [(10, 10, 40, 40), huge, (200, 200, 300, 300)], size=size)
        [image] = read_voc_folder(dataset)
        assert [face.box for face in image.faces] == [(10, 10, 40, 40), (0, 0, 100, 80)] and image.clipped == 2
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_bytes(b"\xef\xbb\xbf0 0.5 0.5 0.2 0.25\n0 0.5 0.5 9e9 9e9\n")  # 8: a UTF-8 BOM is fine
    [image] = read_yolo_folder(dataset / "images", labels, ["with_mask"])
    assert [face.box for face in image.faces] == [(40, 30, 60, 50), (0, 0, 100, 80)] and image.clipped == 1
    out = tmp_path / "e"
    result = cli("evaluate", "detect", tmp_path / "vocTrue", "--out", out, "--classifier-only")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["boxes_clipped"] == 2


def test_13_absolute_and_relative_file_names_mixed_in_voc(tmp_path):
    from maskmodel.evaluation.annotations import read_voc_folder

    dataset = _voc(tmp_path / "voc", [(10, 10, 40, 40)], file_name=str(tmp_path / "elsewhere" / "a.png"))
    write_image(dataset / "images" / "b.png", np.full((80, 100, 3), 90, np.uint8))
    (dataset / "annotations" / "b.xml").write_text("<annotation><filename>b.png</filename><object><name>with_mask"
                                                   "</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9"
                                                   "</ymax></bndbox></object></annotation>")
    (dataset / "annotations" / "c.xml").write_text("<annotation><filename>..\\..\\b.png</filename></annotation>")
    images = read_voc_folder(dataset)
    assert [image.image_path for image in images] == [dataset / "images" / name for name in ("a.png", "b.png", "b.png")]
    result = cli("evaluate", "detect", dataset, "--out", tmp_path / "e", "--classifier-only")
    assert result.exit_code == 0, result.output


def test_12_predict_reads_stdin_by_chunks_and_refuses_what_is_not_an_image(tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "maskmodel", "predict", "-"]
    garbage = subprocess.run(f"head -c 2000000000 /dev/zero | {' '.join(command)}", shell=True, capture_output=True,
                             text=True, timeout=120)
    assert garbage.returncode == 1 and "neither an image of a known format nor file names" in garbage.stdout
    assert "find photos -name '*.jpg' | maskmodel predict -" in garbage.stdout  # what to do instead
    photo = subprocess.run(command, stdin=open(FACES, "rb"), capture_output=True, text=True, timeout=120)
    assert photo.returncode == 0 and len(json.loads(photo.stdout)["faces"]) >= 3


def test_12_predict_reads_paths_from_stdin_one_per_line(tmp_path):
    """`find photos -name '*.png' | maskmodel predict -` (issue 37): one JSON line per path, a missing
    path gets an error line and exit code 1."""
    import subprocess
    import sys

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b c.png"):
        (folder / name).write_bytes(FACES.read_bytes())
    found = subprocess.run(["find", str(folder), "-name", "*.png"], capture_output=True, text=True, check=True).stdout
    command = [sys.executable, "-m", "maskmodel", "predict", "-"]
    result = subprocess.run(command, input=found, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["image"] for line in lines) == [str(folder / "a.png"), str(folder / "b c.png")]
    assert all(len(line["faces"]) >= 3 for line in lines)
    missing = subprocess.run(command, input=f"{folder / 'a.png'}\n{tmp_path / 'gone.png'}\n", capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 1
    assert [json.loads(line).get("error") for line in missing.stdout.splitlines()] == [
        None, f"{tmp_path / 'gone.png'} (from standard input) not found"]
