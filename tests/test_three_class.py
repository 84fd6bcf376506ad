"""Photo sets as training data and a three-class model (`mask_incorrect`) through the whole runtime."""

import json
import shutil

import cv2
import numpy as np
import pytest

from helpers import COVID, CROWD_DEV, SHARED
from maskmodel.evaluation.annotations import AnnotatedFace, AnnotatedImage, read_voc_folder
from maskmodel.training.photos import aligned_boxes, split_photos

ILC = SHARED / "datasets" / "ilc-2021"


def copy_photos(photos, root):
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for photo in photos:
        shutil.copy(photo.image_path, root / "images")
        shutil.copy(ILC / "annotations" / f"{photo.image_path.stem}.xml", root / "annotations")
    return root


def test_photo_faces_take_the_detector_box_where_it_matches():
    annotated = AnnotatedImage(ILC / "x.jpg", (AnnotatedFace((100, 100, 200, 220), "with_mask"),
                                               AnnotatedFace((300, 50, 340, 100), "without_mask")))
    detections = np.array([[110, 90, 205, 200, 0.9], [500, 500, 540, 540, 0.8]], dtype=np.float32)
    assert aligned_boxes(annotated, detections) == [((110.0, 90.0, 205.0, 200.0), True),
                                                    ((300, 50, 340, 100), False)]


def test_photo_split_is_deterministic_and_duplicate_aware(tmp_path):
    root = copy_photos(read_voc_folder(ILC)[:20], tmp_path / "photos")
    original = root / "images" / "ilc_0003.jpg"
    shutil.copy(original, root / "images" / "zz_exact.jpg")
    cv2.imwrite(str(root / "images" / "zz_near.jpg"), cv2.imread(str(original)), [cv2.IMWRITE_JPEG_QUALITY, 60])
    for name in ("zz_exact", "zz_near"):
        xml = (root / "annotations" / "ilc_0003.xml").read_text().replace("ilc_0003.jpg", f"{name}.jpg")
        (root / "annotations" / f"{name}.xml").write_text(xml)
    first, second = split_photos(root, seed=3), split_photos(root, seed=3)
    assert [(p.annotated.image_path, p.split) for p in first] == [(p.annotated.image_path, p.split) for p in second]
    split_of = {p.annotated.image_path.name: p.split for p in first}
    assert "zz_exact.jpg" not in split_of  # an exact copy is kept once
    assert split_of["zz_near.jpg"] == split_of["ilc_0003.jpg"]
    assert {p.split for p in split_photos(root, seed=4)} <= {"train", "val", "test"}


@pytest.fixture(scope="module")
def three_class_run(tmp_path_factory):
    pytest.importorskip("keras")
    from maskmodel.detect.detector_config import create_face_detector, one_face_detector
    from maskmodel.training.train import TrainConfig, train

    root = tmp_path_factory.mktemp("three")
    for split in ("train", "val", "test"):
        for label in ("with_mask", "without_mask"):
            (root / "folders" / split / label).mkdir(parents=True)
            for source in sorted((COVID / split / label).iterdir())[:2]:
                shutil.copy(source, root / "folders" / split / label)
    incorrect = [p for p in read_voc_folder(ILC) if any(f.label == "with_incorrect_mask" for f in p.faces)
                 and len(p.faces) <= 3][:12]
    copy_photos(incorrect, root / "photos")
    config = TrainConfig(alpha=0.35, augmented_copies=1, head_epochs=1, finetune_epochs=1, batch_size=8,
                         split_fractions=(0.5, 0.5, 0.0))
    metrics = train([root / "folders"], root / "run", one_face_detector(), config, cache_dir=root / "cache",
                    progress=False, photos=[root / "photos"], photo_detector=create_face_detector("yunet"))
    return root / "run", metrics


def test_three_class_training_run(three_class_run):
    out, metrics = three_class_run
    assert metrics["classes"] == ["with_mask", "without_mask", "mask_incorrect"]
    assert len(metrics["splits"]["val"]["confusion_matrix"]) == 3
    assert set(metrics["photo_splits"]) == {"train", "val"}
    photos = next(iter(json.loads((out / "dataset_report.json").read_text())["photos"].values()))
    faces = sum(sum(counts.values()) for counts in photos["faces"].values())
    assert photos["boxes_from_detector"] + photos["boxes_from_annotation"] == faces
    assert photos["boxes_from_detector"] >= faces // 2
    assert metrics["photo_splits"]["val"]["count"] == sum(photos["faces"]["val"].values())


def test_three_class_model_through_the_runtime(three_class_run, tmp_path):
    from maskmodel.classify.classifier import InputContract, MaskClassifier
    from maskmodel.classify.crops import CropPolicy
    from maskmodel.drawing.draw import COLOURS, draw_faces
    from maskmodel.evaluation.evaluate import evaluate_annotated_faces
    from maskmodel.pipeline import Face, MaskDetector
    from maskmodel.outputs.report import Summary, report_rows
    from maskmodel.results import ImageResult

    out, metrics = three_class_run
    classes = tuple(metrics["classes"])
    classifier = MaskClassifier(out / "model.onnx", InputContract(224, classes, CropPolicy()), backend="opencv")
    crowd = [i for i in read_voc_folder(CROWD_DEV) if i.image_path.stem in ("maksssksksss148", "maksssksksss11",
                                                                             "maksssksksss200")]
    result = evaluate_annotated_faces(classifier, crowd)
    assert result["count"] == 25 and np.array(result["confusion_matrix"]).shape == (3, 3)
    assert result["per_class"]["mask_incorrect"]["support"] == 1
    assert result["two_class"]["count"] == 24 and len(result["two_class"]["confusion_matrix"]) == 2

    image = cv2.imread(str(crowd[0].image_path))
    faces = MaskDetector(model=classifier).detect(image)
    rows = report_rows(ImageResult.found("a.png", faces, (image.shape[1], image.shape[0]), "yunet", "tiny"))
    assert faces and all(abs(r["p_with_mask"] + r["p_without_mask"] + r["p_mask_incorrect"] - 1) < 1e-3 for r in rows)

    incorrect = Face((20.0, 20.0, 80.0, 90.0), 0.9, "mask_incorrect",
                     {"with_mask": 0.1, "without_mask": 0.2, "mask_incorrect": 0.7})
    masked = Face((0.0, 0.0, 9.0, 9.0), 0.9, "with_mask", {"with_mask": 0.8, "without_mask": 0.1, "mask_incorrect": 0.1})
    summary = Summary()
    summary.add(report_rows(ImageResult.found("b.png", [incorrect, masked], (100, 100), "yunet", "tiny")))
    counts = summary.to_dict()
    assert (counts["faces"], counts["with_mask"], counts["mask_incorrect"], counts["compliance_rate"]) == (2, 1, 1, 0.5)
    drawn = draw_faces(np.zeros((200, 200, 3), np.uint8), [incorrect], list(classes))
    assert tuple(drawn[60, 20]) == COLOURS["mask_incorrect"]  # left edge of the box


def test_evaluate_cli_on_the_published_three_class_model(tmp_path):
    from click.testing import CliRunner

    import maskmodel
    from maskmodel.cli.main import main

    assert maskmodel.load("mask-mobilenetv2-0.35@1.0.0").contract.classes == ("with_mask", "without_mask")
    (tmp_path / "voc" / "images").mkdir(parents=True)
    (tmp_path / "voc" / "annotations").mkdir()
    for stem in ("maksssksksss148", "maksssksksss11", "maksssksksss200"):  # 25 faces, 1 mask_weared_incorrect
        shutil.copy(CROWD_DEV / "images" / f"{stem}.png", tmp_path / "voc" / "images")
        shutil.copy(CROWD_DEV / "annotations" / f"{stem}.xml", tmp_path / "voc" / "annotations")
    result = CliRunner().invoke(main, ["evaluate", "detect", str(tmp_path / "voc"), "--out", str(tmp_path / "e"),
                                       "--classifier-only", "--model", "mask-mobilenetv2-0.35@2.0.0"])
    assert result.exit_code == 0, result.output
    assert "mask_incorrect" in result.output and "with/without balanced accuracy" in result.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["faces"] == 25 and set(metrics["ap50"]) == {"with_mask", "without_mask", "mask_incorrect"}
    assert np.array(metrics["classification"]["confusion_matrix"]).shape == (3, 3)
    assert metrics["classification_two_class"]["count"] == 24
    assert (tmp_path / "e" / "confusion.png").stat().st_size > 0
