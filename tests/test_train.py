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
