"""The Python API and CLI as a new user meets them (issue 18): inputs of every kind, a result object,
models validated before anything is written, JSON output, one place mapping errors to exit codes."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import maskmodel
from maskmodel.cli.main import main
from helpers import CROWD_DEV, crowd_images

MIXED = CROWD_DEV / "images" / "maksssksksss148.png"  # five faces, masked and unmasked


@pytest.fixture(scope="module")
def detector():
    return maskmodel.MaskDetector()


def test_detect_takes_paths_bgr_rgb_gray_and_pil(detector):
    bgr = cv2.imread(str(MIXED))
    reference = detector.detect(bgr)
    assert len(reference) >= 3
    assert detector.detect(MIXED) == reference and detector.detect(str(MIXED)) == reference
    assert detector.detect(bgr[:, :, ::-1].copy(), color="rgb") == reference
    assert detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)) == reference
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(gray)) >= 3 and len(detector.detect(gray[:, :, None])) == len(detector.detect(gray))
    Image = pytest.importorskip("PIL.Image")
    assert detector.detect(Image.open(MIXED)) == reference
    with pytest.raises(ValueError, match="8-bit"):
        detector.detect(bgr.astype(np.float32))


def test_detections_give_arrays_json_and_a_picture(detector):
    faces = detector.detect(MIXED)
    n = len(faces)
    assert faces.xyxy.shape == (n, 4) and faces.scores.shape == (n,) and faces.probabilities.shape == (n, 2)
    assert list(faces.labels) == [f.label for f in faces]
    assert (faces.probabilities.argmax(1) == faces.class_ids).all()
    assert np.allclose(faces.probabilities.sum(1), 1, atol=1e-3)
    record = json.loads(faces.to_json(image="x"))
    assert record["image"] == "x" and len(record["faces"]) == n and record["width"] == faces.image.shape[1]
    picture = faces.plot()
    assert picture.shape == faces.image.shape and (picture != faces.image).any()
    try:
        import supervision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install supervision"):
            faces.to_supervision()
    else:
        assert len(faces.to_supervision()) == n


def test_a_whole_photo_is_not_a_face_crop():
    classifier = maskmodel.load()
    image = cv2.imread(str(MIXED))
    with pytest.raises(ValueError, match="predict\\(image, boxes\\)"):
        classifier.predict_crops([image])
    assert classifier.predict(image, [[10, 10, 60, 60]]).shape == (1, 2)


@pytest.mark.parametrize("model, message", [("nosuch", "Unknown model 'nosuch'"),
                                            ("yunet-2026may", "not a mask classifier")])
def test_bad_models_are_usage_errors_before_anything_is_written(tmp_path, model, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(MIXED), "--out", str(out), "--model", model])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not out.exists()
    result = CliRunner().invoke(main, ["predict", str(MIXED), "--model", model])
    assert result.exit_code == 2 and message in result.output


def test_predict_takes_files_folders_and_stdin_as_json_lines(tmp_path):
    folder = tmp_path / "Straße"
    folder.mkdir()
    for photo in crowd_images(2):
        (folder / photo.name).write_bytes(photo.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    command = [sys.executable, "-m", "maskmodel", "predict", str(MIXED), str(folder), "-"]
    done = subprocess.run(command, input=MIXED.read_bytes(), capture_output=True, timeout=300)
    assert done.returncode == 1  # the broken file
    lines = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert [line["image"].rsplit("/", 1)[-1] for line in lines] == [
        MIXED.name, "broken.png", *sorted(p.name for p in crowd_images(2)), "-"]
    assert "Straße" in done.stdout.decode("utf-8")  # non-ASCII kept, not escaped
    assert lines[0]["faces"] == lines[-1]["faces"] and "error" in lines[1]
    probability = lines[0]["faces"][0]["probabilities"]["with_mask"]
    assert probability == round(probability, 4)
    assert b"setPreferableTarget" not in done.stderr  # OpenCV's engine warning is silenced


def test_models_list_and_info_as_json():
    listed = json.loads(CliRunner().invoke(main, ["models", "list", "--json"]).output)
    assert [m["name"] for m in listed if m["default"] and m["task"] == "classification"] == [maskmodel.DEFAULT_CLASSIFIER]
    info = CliRunner().invoke(main, ["models", "info", maskmodel.DEFAULT_CLASSIFIER, "--json"])
    assert json.loads(info.output)["classes"] == ["with_mask", "without_mask"]
    text = CliRunner().invoke(main, ["models", "info", maskmodel.DEFAULT_CLASSIFIER]).output
    crowd = maskmodel.model_info(maskmodel.DEFAULT_CLASSIFIER).metrics["crowd-dev-faces"]["balanced_accuracy"]
    assert f"balanced_accuracy: {crowd:.3f}" in text and "{" not in text


def test_summary_records_what_was_used(tmp_path):
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["annotate", str(MIXED), "--out", str(out), "-q"]).exit_code == 0
    used = json.loads((out / "summary.json").read_text())["used"]
    assert used["inputs"] == [str(MIXED)] and used["model"].startswith(maskmodel.DEFAULT_CLASSIFIER + "@")
    assert used["face_detector"]["scales"] and used["face_detector"]["score_threshold"] is not None
    assert used["face_detector"]["model"] == "centerface@1.0.0"
    assert used["versions"]["opencv"] == cv2.__version__ and used["started"] <= used["ended"]


def test_a_uri_scheme_without_its_packages_is_one_clear_line(tmp_path):
    pytest.importorskip("fsspec")
    result = CliRunner().invoke(main, ["annotate", "https://example.invalid/photos", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output and "https://" in result.output


def test_training_offline_says_how_to_provide_the_imagenet_weights(tmp_path, monkeypatch):
    from helpers import SHARED

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    data = tmp_path / "data"
    for label in ("with_mask", "without_mask"):
        for index in range(3):
            write = data / label / f"{index}.png"
            write.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(write), np.full((40, 40, 3), 60 * index, np.uint8))
    result = CliRunner().invoke(main, ["train", str(data), "--out", str(tmp_path / "run"), "--alpha", "0.35"])
    assert result.exit_code == 2 and "models install --from" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # refused before any work
    installed = CliRunner().invoke(main, ["models", "install", "--from", str(SHARED / "models" / "keras")])
    assert installed.exit_code == 0, installed.output
    assert (tmp_path / "keras" / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5").is_file()


def test_haar_runs_or_is_refused_in_one_line_naming_the_remedy():
    from maskmodel.runtime.opencv import OpenCVCapabilityError
    from maskmodel.detect.detector_config import available_detectors

    result = CliRunner().invoke(main, ["predict", str(MIXED), "--face-detector", "haar"])
    if hasattr(cv2, "CascadeClassifier"):  # opencv-python 4.x, or opencv-contrib-python
        assert "haar" in available_detectors() and result.exit_code == 0, result.output
    else:
        assert "haar" not in available_detectors() and result.exit_code == 2
        assert "pip install opencv-contrib-python" in result.output and "Traceback" not in result.output
        help_text = " ".join(CliRunner().invoke(main, ["predict", "--help"]).output.split())
        assert "Not on this install: haar (choosing it names the remedy" in help_text
        with pytest.raises(OpenCVCapabilityError, match="opencv-contrib-python"):
            maskmodel.create_face_detector("haar")
