"""The third class as a gate on a two-class model (issue 45): a small real run of the recipe, its files
through the runtime, and its publication."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers import COVID, CROWD_DEV, ILC
from maskmodel.evaluation.annotations import read_voc_folder


@pytest.fixture(scope="module", params=["shared", "branch"])
def gate_run(tmp_path_factory, request):
    pytest.importorskip("keras")
    from maskmodel.training.third_class import GateConfig, train_gate

    root = tmp_path_factory.mktemp("gate")
    for split in ("train", "test"):
        for label in ("with_mask", "without_mask"):
            (root / "folders" / split / label).mkdir(parents=True)
            for source in sorted((COVID / split / label).iterdir())[:4]:
                shutil.copy(source, root / "folders" / split / label)
    (root / "photos" / "images").mkdir(parents=True)
    (root / "photos" / "annotations").mkdir()
    incorrect = [p for p in read_voc_folder(ILC) if any(f.label == "with_incorrect_mask" for f in p.faces)
                 and len(p.faces) >= 2][:16]
    for photo in incorrect:
        shutil.copy(photo.image_path, root / "photos" / "images")
        shutil.copy(ILC / "annotations" / f"{photo.image_path.stem}.xml", root / "photos" / "annotations")
    config = GateConfig(copies=1, split_fractions=(0.5, 0.0, 0.5), gate=request.param)
    metrics = train_gate([root / "folders"], [root / "photos"], root / "run", config, log=lambda line: None)
    return root / "run", metrics


def test_the_gate_trains_on_real_synthetic_and_hard_faces_and_is_calibrated_on_the_test_photos(gate_run):
    run, metrics = gate_run
    assert metrics["classes"] == ["with_mask", "without_mask", "mask_incorrect"]
    counts = metrics["counts"]
    assert counts["real/mask_incorrect"] > 0 and counts["real/with_mask"] > 0
    synthetic_wrong = sum(n for k, n in counts.items() if k.split("/")[1] in ("below_nose", "chin"))
    synthetic_right = sum(n for k, n in counts.items() if k.split("/")[1] in ("over_nose", "low_on_nose"))
    assert synthetic_wrong > 0 and synthetic_right > 0  # both sides of the line, from the same faces
    calibration = metrics["calibration"]
    assert calibration["count"] == calibration["report"]["count"] > 0 and calibration["temperature"] > 0
    assert metrics["splits"]["test"]["count"] == 8  # the folders' test split, used for neither
    assert (run / "synthetic.png").stat().st_size > 10_000
    card = json.loads((run / "run.json").read_text())
    assert card["kind"] == "third-class gate" and card["config"]["base"] == "mask-mobilenetv2-0.35@3.0.0"


def test_the_gated_run_keeps_the_base_with_without_decision_on_crowd_photos(gate_run):
    import cv2

    from maskmodel.loading import load

    run, _ = gate_run
    gated, base = load(str(run)), load("mask-mobilenetv2-0.35@3.0.0")
    assert gated.contract.classes == ("with_mask", "without_mask", "mask_incorrect")
    three, two = [], []
    for photo in read_voc_folder(CROWD_DEV)[:6]:
        image, boxes = cv2.imread(str(photo.image_path)), [face.box for face in photo.faces]
        three.append(gated.predict(image, boxes))
        two.append(base.predict(image, boxes))
    three, two = np.concatenate(three), np.concatenate(two)
    assert len(two) >= 20
    np.testing.assert_allclose(three.sum(1), 1, atol=1e-4)
    same = three[:, :2].argmax(1) == two.argmax(1)  # a temperature fitted on the calibration faces keeps the order
    if json.loads((run / "run.json").read_text())["config"]["gate"] == "branch":
        assert same.all()  # the base's network, untouched
    else:
        assert same[np.abs(two[:, 0] - 0.5) > 0.1].all()  # distilled from the base


def test_a_gate_run_publishes_with_its_base_recipe_and_synthetic_data(gate_run, tmp_path):
    from maskmodel.training.publish import publish
    from maskmodel.zoo.registry import package_weights_dir

    run, _ = gate_run
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(package_weights_dir() / "manifest.json", weights)
    record = publish(run, "mask-mobilenetv2-0.35", "9.0.0", weights, "A gated three-class test model.")
    assert record["classes"] == ["with_mask", "without_mask", "mask_incorrect"]
    assert record["architecture"]["alpha"] == 0.35 and record["architecture"]["base"] == "mask-mobilenetv2-0.35@3.0.0"
    assert record["command"].startswith("python -m maskmodel.training.third_class")
    assert "--copies 1" in record["command"] and "Platt" in record["recipe"]["calibrated_on"]
    assert "MaskTheFace" in record["training_data"]["synthetic_masks"]
    assert (weights / "mask-mobilenetv2-0.35-9.0.0.onnx").exists()
    assert "## mask-mobilenetv2-0.35 9.0.0" in (weights / "MODEL_CARD.md").read_text()
