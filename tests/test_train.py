"""A tiny real training run (a few covid19 images, one epoch per phase) and its artefacts."""

import json
import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("keras")

from helpers import COVID, write_image  # noqa: E402
from maskmodel.detect.detector_config import one_face_detector  # noqa: E402
from maskmodel.training.train import TrainConfig, TrainingDataError, train  # noqa: E402

TINY = TrainConfig(alpha=0.35, input_size=224, augmented_copies=1, head_epochs=1, finetune_epochs=1, batch_size=8)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    for split in ("train", "val", "test"):
        for label in ("with_mask", "without_mask"):
            (root / split / label).mkdir(parents=True)
            for source in sorted((COVID / split / label).iterdir())[:3]:
                shutil.copy(source, root / split / label / source.name)
    (root / "train" / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


@pytest.fixture(scope="module")
def tiny_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    detector = one_face_detector("yunet")
    metrics = train([tiny_dataset], out, detector, TINY, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)
    return out, metrics


def test_run_directory_has_every_artefact(tiny_run, tiny_dataset):
    out, metrics = tiny_run
    for name in ("model.keras", "model.onnx", "metrics.json", "curves.png", "confusion.png",
                 "dataset_report.json", "run.json"):
        assert (out / name).stat().st_size > 0, name
    assert set(metrics["splits"]) == {"train", "val", "test"}
    test = metrics["splits"]["test"]
    assert test["count"] == 6 and len(test["confusion_matrix"]) == 2
    report = json.loads((out / "dataset_report.json").read_text())
    assert list(report["unreadable"]) == [str(tiny_dataset / "train" / "with_mask" / "broken.jpg")]
    assert report["faces_found"] + report["faces_not_found"] == 18
    assert cv2.imread(str(out / "curves.png")).shape[1] > 500
    calibration = metrics["calibration"]  # a temperature fitted on the val split, folded into the model
    assert calibration["fitted_on"] == "val" and calibration["count"] == 6 and calibration["temperature"] > 0


def test_onnx_agrees_with_keras_through_opencv_dnn(tiny_run):
    import keras

    out, _ = tiny_run
    model = keras.saving.load_model(out / "model.keras")
    crops = [cv2.resize(cv2.imread(str(p)), (224, 224)) for p in sorted((COVID / "test" / "with_mask").iterdir())[:8]]
    net = cv2.dnn.readNetFromONNX(str(out / "model.onnx"))
    net.setInput(cv2.dnn.blobFromImages(crops, 1.0, (224, 224), swapRB=True))
    from_opencv = net.forward()
    from_keras = model.predict(np.stack([c[:, :, ::-1] for c in crops]).astype("float32"), verbose=0)
    assert np.abs(from_opencv - from_keras).max() <= 1e-4
    assert (from_opencv.argmax(1) == from_keras.argmax(1)).all()


@pytest.mark.parametrize("layout,message", [
    ({"with_mask": 2, "without_mask": 0}, "no train images for \\['without_mask'\\]"),
    ({"with_mask": 3}, "at least 2 class folders"),
    ({"with_mask": 1, "without_mask": 1}, "Expected images of every class in the (train|val) split"),
])
def test_bad_training_input_fails_before_training(tmp_path, layout, message):
    for label, count in layout.items():
        (tmp_path / "data" / label).mkdir(parents=True)
        for index in range(count):
            write_image(tmp_path / "data" / label / f"{index}.png", np.full((64, 64, 3), 40 * index, np.uint8))
    with pytest.raises(TrainingDataError, match=message):
        train([tmp_path / "data"], tmp_path / "run", one_face_detector("yunet"), TINY,
              cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "run" / "model.keras").exists()
    assert not (tmp_path / "cache").exists()  # refused before any face was even cropped


def test_the_run_directory_is_a_model_everything_accepts(tiny_run, tmp_path):
    from click.testing import CliRunner

    import maskmodel
    from maskmodel.cli.main import main
    from helpers import crowd_images

    out, metrics = tiny_run
    contract = json.loads((out / "model.json").read_text())
    assert contract["classes"] == metrics["classes"] and contract["input"]["size"] == TINY.input_size
    classifier = maskmodel.load(str(out))
    assert classifier.contract.classes == tuple(metrics["classes"])
    assert maskmodel.load(str(out / "model.onnx")).contract == classifier.contract
    photo = crowd_images(1)[0]
    for target in (out, out / "model.onnx"):
        result = CliRunner().invoke(main, ["predict", str(photo), "--model", str(target)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["model"] == str(target.resolve())
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / photo.name).write_bytes(photo.read_bytes())
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(tmp_path / "o"), "--model", str(out), "-q"])
    assert result.exit_code == 0, result.output


def test_epochs_means_each_phase_unless_a_phase_is_named():
    from maskmodel.cli.train import phase_epochs

    assert phase_epochs(None, None, None) == (20, 12)
    assert phase_epochs(1, None, None) == (1, 1)  # --epochs 1: two epochs in all, not 21
    assert phase_epochs(3, 0, None) == (0, 3) and phase_epochs(None, None, 5) == (20, 5)
    assert phase_epochs(None, 2, None, smoke=True) == (2, 1) and phase_epochs(4, None, None, smoke=True) == (4, 4)


def test_train_command_log_is_quiet_and_ends_with_where_things_are(tmp_path):
    """The real command in its own process (TensorFlow writes to the file descriptor): no third-party
    lines, one line per epoch with its phase, the run's files named, splits too small to measure said."""
    import subprocess
    import sys

    data = tmp_path / "data"
    for split, count in (("train", 10), ("val", 3), ("test", 3)):
        for label in ("with_mask", "without_mask"):
            (data / split / label).mkdir(parents=True)
            for source in sorted((COVID / "train" / label).iterdir())[:count] if split == "train" else \
                    sorted((COVID / split / label).iterdir())[:count]:
                shutil.copy(source, data / split / label / source.name)
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "maskmodel", "train", str(data), "--out", str(out), "--alpha", "0.35",
                             "--smoke", "--head-epochs", "2"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "\r" not in result.stderr  # a log (not a terminal) gets no progress bars (issue 44, 9)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    epochs = [line for line in lines if line.startswith("phase ")]
    assert [line.split("  ")[0] for line in epochs] == [
        "phase 1/2 (head) epoch 1/2", "phase 1/2 (head) epoch 2/2", "phase 2/2 (finetune) epoch 1/1"]
    assert all("loss " in line and "val_accuracy " in line for line in epochs)
    metrics = json.loads((out / "metrics.json").read_text())
    counts = metrics["counts"]  # near duplicates may move an image between splits: 6 or 7 in val and test
    assert counts["train"] == {"with_mask": 8, "without_mask": 8}  # --smoke: at most 8 a class and split
    small = [split for split in ("val", "test") if sum(counts[split].values()) < 10]
    assert small == ["val", "test"]
    assert [line for line in lines if line not in epochs] == [  # nothing from TensorFlow, OpenCV, tf2onnx
        f"warning: the {split} split is too small to measure ({sum(counts[split].values())} images, under 10: "
        f"with_mask {counts[split]['with_mask']}, without_mask {counts[split]['without_mask']}): its accuracy says little"
        for split in small]
    assert f"model: {out / 'model.onnx'}" in result.stdout and f"curves: {out / 'curves.png'}" in result.stdout
    assert f"metrics: {out / 'metrics.json'}" in result.stdout
    assert result.stdout.count("TOO SMALL TO MEASURE") == 2
    assert "warning" not in metrics["splits"]["train"] and "too small" in metrics["splits"]["test"]["warning"]
    assert len(metrics["warnings"]) == 2
    run = json.loads((out / "run.json").read_text())
    assert run["history"]["phase"] == ["head", "head", "finetune"] and run["training_samples"] == 16


def test_split_warning_names_small_splits_and_missing_classes():
    from maskmodel.training.train import split_warning

    assert split_warning("test", {"with_mask": 5, "without_mask": 5}) is None
    assert "2 images, under 10" in split_warning("test", {"with_mask": 2, "without_mask": 0})
    assert "no without_mask image" in split_warning("test", {"with_mask": 2, "without_mask": 0})
    assert split_warning("val", {"with_mask": 40, "without_mask": 0}) == (
        "the val split is too small to measure (no without_mask image: with_mask 40, without_mask 0): "
        "its accuracy says little")
