import json
import shutil

import cv2
import pytest
from click.testing import CliRunner

import maskmodel
from helpers import FACE_MODELS
from maskmodel import zoo
from maskmodel.cli.main import main


def test_manifest_lint():
    """Every model: a default version that exists, semver versions, hashed files present or downloadable."""
    models = zoo.manifest()["models"]
    assert {"centerface", "yunet-2026may", "opencv-ssd-uint8", "haar"} <= set(models)
    for name, entry in models.items():
        assert entry["default"] in entry["versions"], name
        for version, record in entry["versions"].items():
            assert zoo.SEMVER.match(version), (name, version)
            assert record["license"] and record["files"], (name, version)
            for file in record["files"].values():
                if file.get("builtin"):
                    continue
                assert len(file["sha256"]) == 64 and file["size"] > 0 and file["url"].startswith("https://")
                local = zoo.package_weights_dir() / file["file"]
                if local.exists():
                    assert zoo.sha256_of(local) == file["sha256"], local
                    assert local.stat().st_size == file["size"]
                else:
                    assert file.get("upstream"), f"{file['file']} is neither published here nor upstream"


def test_published_classifiers_ship_with_the_package():
    for name in maskmodel.list_models(task="classification"):
        info = maskmodel.model_info(name)
        for format in info.files:
            assert maskmodel.weights_path(name, format=format, download=False).parent == zoo.package_weights_dir()


def test_unknown_name_and_version_list_what_exists():
    with pytest.raises(zoo.ModelNotFoundError, match="Unknown model 'nope'. Available: .*yunet-2026may"):
        maskmodel.model_info("nope")
    with pytest.raises(zoo.ModelNotFoundError, match="Unknown version '9.9.9' of 'yunet-2026may'. Available: 1.0.0"):
        maskmodel.model_info("yunet-2026may@9.9.9")


def test_cache_then_offline_error_names_everything(model_home):
    assert maskmodel.weights_path("yunet-2026may") == model_home / "face_detection_yunet_2026may.onnx"
    (model_home / "face_detection_yunet_2026may.onnx").unlink()
    with pytest.raises(zoo.WeightsUnavailableError) as error:
        maskmodel.weights_path("yunet-2026may", download=False)
    message = str(error.value)
    for part in ("face_detection_yunet_2026may.onnx", "https://github.com/opencv/opencv_zoo", "MASKMODEL_HOME",
                 "maskmodel models install --from DIR"):
        assert part in message


def test_corrupt_cached_file_is_not_used(model_home):
    (model_home / "face_detection_yunet_2026may.onnx").write_bytes(b"truncated")
    with pytest.raises(zoo.WeightsUnavailableError):
        maskmodel.weights_path("yunet-2026may", download=False)


def test_explicit_path_is_checked(tmp_path):
    bad = tmp_path / "yunet.onnx"
    bad.write_bytes(b"not the model")
    with pytest.raises(zoo.ChecksumError, match="expected sha256 ebafce4e"):
        maskmodel.weights_path("yunet-2026may", path=bad)
    good = FACE_MODELS / "face_detection_yunet_2026may.onnx"
    assert maskmodel.weights_path("yunet-2026may", path=good) == good


def test_install_from_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKMODEL_HOME", str(tmp_path / "home"))
    installed = zoo.install_from(FACE_MODELS)
    assert {p.name for p in installed} == {"face_detection_yunet_2026may.onnx", "opencv_face_detector_uint8.pb",
                                           "opencv_face_detector.pbtxt", "centerface_bnmerged.onnx"}
    corrupt = tmp_path / "corrupt"
    shutil.copytree(FACE_MODELS, corrupt)
    (corrupt / "opencv_face_detector.pbtxt").write_text("tampered")
    with pytest.raises(zoo.ChecksumError):
        zoo.install_from(corrupt)


def test_models_cli_list_and_info():
    from click.testing import CliRunner

    from maskmodel.cli.main import main

    listing = CliRunner().invoke(main, ["models", "list"])
    assert listing.exit_code == 0 and "yunet-2026may" in listing.output
    unknown = CliRunner().invoke(main, ["models", "info", "nope"])
    assert unknown.exit_code == 2 and "Available:" in unknown.output
    assert json.loads(json.dumps(zoo.manifest()))  # manifest is plain JSON


def test_models_list_tells_the_truth():
    """Every published version is listed; the defaults come from one place; `downloaded` (files here) and
    `runs_here` (this OpenCV runs it) are told apart (issue 37: the SSD graph was installed and listed
    as not local)."""
    from maskmodel.detect.detector_config import DEFAULT_FACE_DETECTOR, missing_capability

    listed = json.loads(CliRunner().invoke(main, ["models", "list", "--json"]).output)  # one JSON document
    published = {info.spec for name in zoo.list_models() for info in zoo.model_versions(name)}
    assert {f"{record['name']}@{record['version']}" for record in listed} == published
    assert "mask-mobilenetv2-0.35@2.0.0" in published
    defaults = {(record["task"], record["name"], record["version"]) for record in listed if record["default"]}
    assert defaults == {("classification", zoo.DEFAULT_CLASSIFIER, zoo.model_info(zoo.DEFAULT_CLASSIFIER).version),
                        ("face-detection", zoo.detector_aliases()[DEFAULT_FACE_DETECTOR],
                         zoo.model_info(DEFAULT_FACE_DETECTOR).version)}
    for record in listed:
        if record["task"] == "face-detection":
            problem = missing_capability(record["alias"], record["version"])
            assert record["runs_here"] == (problem is None) and record["note"] == (problem or "")
    haar = next(record for record in listed if record["name"] == "haar")
    assert haar["downloaded"] == haar["runs_here"] == hasattr(cv2, "CascadeClassifier")
    ssd_tf = next(record for record in listed if record["name"] == "opencv-ssd-uint8" and record["version"] == "1.0.0")
    assert ssd_tf["runs_here"] == hasattr(cv2.dnn, "readNetFromTensorflow")
    assert ssd_tf["downloaded"]  # installed from ../shared by the model_home fixture, whether it runs or not
    table = CliRunner().invoke(main, ["models", "list"]).output.splitlines()
    assert table[0].split()[-3:] == ["downloaded", "runs", "here"]
    row = next(line for line in table if line.startswith("opencv-ssd-uint8") and " 1.0.0" in line)
    assert row.split()[-2:] == ["yes", "yes" if ssd_tf["runs_here"] else "no"]
    second = CliRunner().invoke(main, ["models", "info", "mask-mobilenetv2-0.35@2.0.0"]).output
    assert "default" not in second.splitlines()[0]
    assert "the default face detector" in CliRunner().invoke(main, ["models", "info", DEFAULT_FACE_DETECTOR]).output


def test_model_card_is_rendered_from_the_manifest():
    from maskmodel.training.model_card import render

    card = (zoo.package_weights_dir() / "MODEL_CARD.md").read_text()
    assert card == render(zoo.manifest())
    for name in maskmodel.list_models(task="classification"):
        assert f"## {name} " in card
