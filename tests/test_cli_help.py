"""`--help` agrees with what the commands do and with the published default classifier."""

import pytest

import maskmodel
from maskmodel.cli import detector as detector_cli
from maskmodel.cli.main import main

MODEL_COMMANDS = [["annotate"], ["predict"], ["watch"], ["evaluate", "classify"], ["evaluate", "detect"]]


def option(path: list[str], name: str):
    command = main
    for part in path:
        command = command.commands[part]
    return next(param for param in command.params if param.name == name)


def test_training_defaults_are_the_default_classifiers():
    published = maskmodel.model_info(maskmodel.DEFAULT_CLASSIFIER)
    assert option(["train"], "input_size").default == str(published.input["size"]) == "128"
    assert option(["train"], "alpha").default == str(published.architecture["alpha"])
    assert option(["train"], "face_detector").default == published.recipe["face_detector"] == "centerface"
    assert option(["evaluate", "classify"], "face_detector").default == "centerface"  # crops as it was trained on


@pytest.mark.parametrize("path", MODEL_COMMANDS, ids=" ".join)
def test_every_model_option_says_what_it_takes(path):
    model = option(path, "model")
    assert model.default == maskmodel.DEFAULT_CLASSIFIER
    assert "NAME[@VERSION]" in (model.help or "") and "run directory" in model.help


def test_a_detector_this_opencv_cannot_run_is_named_not_explained_in_help(monkeypatch):
    paragraph = "The haar face detector needs cv2.CascadeClassifier ... pip install opencv-contrib-python (a remedy)"
    monkeypatch.setattr(detector_cli, "missing_capability", lambda name: paragraph if name == "haar" else None)
    text = detector_cli.face_detector_help("Face detector.")
    assert "haar" in text and "docs/opencv.md" in text and paragraph not in text  # choosing it gives the paragraph
    monkeypatch.setattr(detector_cli, "missing_capability", lambda name: None)
    assert detector_cli.face_detector_help("Face detector.") == "Face detector."
