"""`maskmodel evaluate`: measure a classifier or the whole pipeline on your own data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.detector import detector_options, detector_settings, mask_detector
from maskmodel.zoo import DEFAULT_CLASSIFIER

DETECTORS = ["yunet", "ssd", "haar"]


@click.group()
def evaluate() -> None:
    """Evaluate on classification folders or on face-box datasets (VOC or YOLO)."""


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=float))


def _markdown_classification(result: dict, title: str) -> str:
    lines = [f"# {title}", "", f"images: {result['count']}  ", f"accuracy: {result['accuracy']:.4f}  ",
             f"balanced accuracy: {result['balanced_accuracy']:.4f}  ", f"ROC AUC: {result['roc_auc']}", "",
             "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, c in result["per_class"].items():
        lines.append(f"| {name} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | {c['support']} |")
    return "\n".join(lines) + "\n"


@evaluate.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", default=DEFAULT_CLASSIFIER, show_default=True)
@click.option("--face-detector", type=click.Choice([*DETECTORS, "none"]), default="yunet", show_default=True,
              help="Crop each image to its largest face first (as training does); 'none' uses whole images.")
def classify(root, out_dir, model, face_detector) -> None:
    """Classification metrics on ROOT/<class>/* (for a split, pass ROOT/test).

    Writes metrics.json, metrics.md, confusion.png and mistakes.png (the most confident mistakes).
    """
    import cv2
    import numpy as np

    import maskmodel
    from maskmodel.evaluate import evaluate_classification_folder
    from maskmodel.faces import one_face_detector
    from maskmodel.plots import confusion_image, contact_sheet

    classifier = maskmodel.load(model)
    detector = None if face_detector == "none" else one_face_detector(face_detector)
    try:
        result, mistakes = evaluate_classification_folder(classifier, root, detector)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    result["setup"] = {"data": str(root), "model": model, "face_detector": face_detector}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "metrics.json", result)
    (out_dir / "metrics.md").write_text(_markdown_classification(result, f"{model} on {root}"))
    classes = list(classifier.contract.classes)
    cv2.imwrite(str(out_dir / "confusion.png"), confusion_image(np.array(result["confusion_matrix"]), classes, model))
    if mistakes:
        sheet = contact_sheet([m.crop for m in mistakes],
                              [f"{m.truth} -> {m.predicted}\n{m.confidence:.2f} {Path(m.source).name}" for m in mistakes])
        cv2.imwrite(str(out_dir / "mistakes.png"), sheet)
    click.echo(f"accuracy {result['accuracy']:.4f}, balanced accuracy {result['balanced_accuracy']:.4f} "
               f"({result['count']} images, {len(result['unreadable'])} unreadable); written to {out_dir}")


@evaluate.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "data_format", type=click.Choice(["voc", "yolo"]), default="voc", show_default=True,
              help="voc: DATASET/annotations/*.xml + DATASET/images; yolo: DATASET/images + DATASET/labels.")
@click.option("--names", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YOLO class names file, one per line (default DATASET/classes.txt).")
@click.option("--model", default=DEFAULT_CLASSIFIER, show_default=True)
@detector_options
@click.option("--incorrect-as", type=click.Choice(["ignore", "with_mask", "without_mask"]), default="ignore",
              show_default=True, help="How to treat incorrectly worn masks (mask_weared_incorrect, with_incorrect_mask) "
                                      "for a two-class model (ignore: neither found nor missed); a model with a "
                                      "mask_incorrect class scores them as that class unless relabelled here.")
@click.option("--classifier-only", is_flag=True, help="Classify the annotated boxes; no face detection.")
@click.option("--exclude", multiple=True, help="Image file name to leave out (repeatable).")
def detect(dataset, out_dir, data_format, names, model, face_detector, preset, threshold, scales, flip, nms_iou,
           incorrect_as, classifier_only, exclude) -> None:
    """Face AP50, per-class AP50 and mAP50, recall by face size, label accuracy, PR curves.

    With --classifier-only also the classification report over the model's classes (for a three-class
    model, the 3x3 confusion) and the with_mask/without_mask report with the other faces and outputs
    left out (`classification_two_class`). Writes metrics.json, pr_curves.png (and confusion.png) into OUT.
    """
    import cv2

    import maskmodel
    import numpy as np

    from maskmodel.annotations import canonical_labels, read_voc_folder, read_yolo_folder, relabel
    from maskmodel.evaluate import (classification_report, classify_annotated_boxes, evaluate_detections,
                                    two_class_report)
    from maskmodel.imageio import read_image
    from maskmodel.plots import confusion_image, curve_plot

    if data_format == "voc":
        images = read_voc_folder(dataset, frozenset(exclude))
    else:
        names_file = names or dataset / "classes.txt"
        if not names_file.exists():
            raise click.BadParameter(f"{names_file} not found", param_hint="--names")
        class_names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
        images = [i for i in read_yolo_folder(dataset / "images", dataset / "labels", class_names)
                  if i.image_path.name not in exclude]
    images = canonical_labels(images)
    if incorrect_as != "ignore":
        images = relabel(images, {"mask_incorrect": incorrect_as})
    if classifier_only:
        classifier = maskmodel.load(model)
        classes = list(classifier.contract.classes)
        predictions = classify_annotated_boxes(classifier, images)
        setup = {"mode": "classifier-only", "model": model}
    else:
        settings = detector_settings(face_detector, preset, threshold, scales, flip, nms_iou)
        detector = mask_detector(model, settings)
        classes = detector.classes
        predictions = [detector.detect(read_image(i.image_path)) for i in images]
        setup = {"mode": "pipeline", "model": detector.model_name,
                 **{key: "detector default" if value is None else value for key, value in settings.items()}}
    result = evaluate_detections(images, predictions, tuple(classes))
    result["setup"] = {**setup, "data": str(dataset), "format": data_format, "mask_weared_incorrect": incorrect_as}
    out_dir.mkdir(parents=True, exist_ok=True)
    if classifier_only:
        pairs = [(classes.index(f.label), [p.probabilities[c] for c in classes])
                 for i, preds in zip(images, predictions) for f, p in zip(i.faces, preds) if f.label in classes]
        labels, probabilities = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
        result["classification"] = classification_report(labels, probabilities, classes)
        result["classification_two_class"] = two_class_report(labels, probabilities, classes)
        matrix = np.array(result["classification"]["confusion_matrix"])
        cv2.imwrite(str(out_dir / "confusion.png"), confusion_image(matrix, classes, setup["model"]))
        click.echo("confusion (rows: truth, columns: predicted " + ", ".join(classes) + "):")
        for name, row in zip(classes, matrix):
            click.echo(f"  {name:>14s} " + " ".join(f"{v:5d}" for v in row))
        two = result["classification_two_class"]
        click.echo(f"with/without balanced accuracy {two['balanced_accuracy']:.4f} (recall "
                   + ", ".join(f"{c} {r['recall']:.4f}" for c, r in two["per_class"].items()) + ")")
    curves = result.pop("curves")
    _write_json(out_dir / "metrics.json", result)
    plot = curve_plot({f"{name} (AP50 {result['face_ap50'] if name == 'face' else result['ap50'][name]:.3f})":
                       (c["recall"], c["precision"]) for name, c in curves.items()},
                      f"precision-recall at IoU 0.5: {setup['model']}", "recall", "precision")
    cv2.imwrite(str(out_dir / "pr_curves.png"), plot)
    click.echo(f"face AP50 {result['face_ap50']:.4f}, mAP50 {result['map50']:.4f}, precision {result['precision']:.4f}, "
               f"recall {result['recall']:.4f}, label accuracy {result['label_accuracy_on_matched']:.4f}; "
               f"written to {out_dir}")
