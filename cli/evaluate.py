"""`maskmodel evaluate`: measure a classifier or the whole pipeline on your own data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from maskmodel.cli.detector import (CROP_DETECTOR, JOBS_HELP, MODEL_OPTION, FaceDetectorChoice, JobsType, cap_jobs,
                                    detector_options, detector_settings, face_detector_help, mask_detector)


@click.group()
def evaluate() -> None:
    """Evaluate on classification folders or on face-box datasets (VOC or YOLO)."""


def _class_names(names_file: Path) -> list[str]:
    """The class names of a YOLO dataset, one a line."""
    if not names_file.is_file():
        raise click.BadParameter(f"{names_file} not found", param_hint="--names")
    try:
        names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise click.BadParameter(f"{names_file} is not a text file", param_hint="--names") from None
    if not names:
        raise click.BadParameter(f"{names_file} names no class", param_hint="--names")
    return names


def _write_json(path: Path, data: dict) -> None:
    _write(path, json.dumps(data, indent=2, default=float).encode())


def _write(path: Path, data: bytes) -> None:
    """Write an output file whole, under a temporary name first: a symlink in its place is replaced, never
    written through."""
    from maskmodel.runtime.files import write_file_atomic

    write_file_atomic(path, data)


def _write_png(path: Path, image) -> None:
    import cv2

    _write(path, cv2.imencode(".png", image)[1].tobytes())


def _check_fit_box(path: Path | None, overwrite: bool, read: list[Path]) -> None:
    """Refuse a --fit-box target before any work: its folder must exist, it must not exist unless
    --overwrite, and it is never a file being read nor inside a folder being read (the dataset, its
    images), compared by identity (device and inode)."""
    import os

    from maskmodel.io.layout import file_identity, is_inside

    if path is None:
        return
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {folder} does not exist", param_hint="--fit-box")
    if os.path.lexists(path) and not overwrite:
        raise click.BadParameter(f"{path} exists: use --overwrite to replace it", param_hint="--fit-box")
    for source in read:
        source_id = file_identity(source)
        if source_id is not None and (file_identity(path) == source_id or is_inside(folder, source_id)):
            raise click.BadParameter(f"{path} is {source} or inside it, which is being evaluated: write it elsewhere",
                                     param_hint="--fit-box")


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
@MODEL_OPTION
@click.option("--face-detector", type=FaceDetectorChoice("none"), default=CROP_DETECTOR, show_default=True,
              help=face_detector_help("Crop each image to its largest face first, as training does (default: the "
                                      "detector the default classifier's crops were cut with); 'none' uses whole "
                                      "images."))
def classify(root, out_dir, model, face_detector) -> None:
    """Classification metrics on ROOT/<class>/* (for a split, pass ROOT/test).

    Writes metrics.json, metrics.md, confusion.png and mistakes.png (the most confident mistakes).
    """
    import numpy as np

    import maskmodel
    from maskmodel.evaluation.evaluate import evaluate_classification_folder
    from maskmodel.detect.detector_config import one_face_detector
    from maskmodel.outputs.plots import confusion_image, contact_sheet

    classifier = maskmodel.load(model)
    detector = None if face_detector == "none" else one_face_detector(face_detector)
    try:
        result, mistakes = evaluate_classification_folder(classifier, root, detector)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    result["setup"] = {"data": str(root), "model": model, "face_detector": face_detector}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "metrics.json", result)
    _write(out_dir / "metrics.md", _markdown_classification(result, f"{model} on {root}").encode())
    classes = list(classifier.contract.classes)
    _write_png(out_dir / "confusion.png", confusion_image(np.array(result["confusion_matrix"]), classes, model))
    if mistakes:
        sheet = contact_sheet([m.crop for m in mistakes],
                              [f"{m.truth} -> {m.predicted}\n{m.confidence:.2f} {Path(m.source).name}" for m in mistakes])
        _write_png(out_dir / "mistakes.png", sheet)
    click.echo(f"accuracy {result['accuracy']:.4f}, balanced accuracy {result['balanced_accuracy']:.4f} "
               f"({result['count']} images, {len(result['unreadable'])} unreadable); written to {out_dir}")


def _detect_all(images: list, model: str, settings: dict, jobs: int, quiet: bool,
                skipped: list[tuple[str, str]]) -> tuple[list, list, list[list[dict]]]:
    """Detect and classify the faces of every annotated image, in `jobs` processes (the same engine as
    `annotate`, writing nothing), with a progress bar. Returns the readable images, their faces and
    their report rows; unreadable images are added to `skipped`."""
    import os
    import sys

    from tqdm import tqdm

    from maskmodel.batch.engines import iter_annotate
    from maskmodel.batch.worker import AnnotateSettings
    from maskmodel.io.crawl import InputFile
    from maskmodel.outputs.exports import box, probabilities
    from maskmodel.pipeline import Face
    from maskmodel.outputs.report import report_rows

    root = os.path.commonpath([str(image.image_path.parent) for image in images]) if images else "."
    items = [InputFile(image.image_path, os.path.relpath(image.image_path, root)) for image in images]
    run = AnnotateSettings(out_dir=str(root), model=model, dry_run=True, **settings)
    readable, predictions, blocks = [], [], []
    with tqdm(total=len(items), unit="img", disable=quiet or not sys.stderr.isatty(), file=sys.stderr) as bar:
        for image, result in zip(images, iter_annotate(items, run, jobs)):
            bar.update(1)
            if result.status == "error":
                skipped.append((str(image.image_path), result.message))
                continue
            rows = report_rows(result)
            readable.append(image)
            blocks.append(rows)
            predictions.append([Face(box(r), float(r["score"]), r["label"], probabilities(r))
                                for r in rows if r["status"] == "ok"])
    return readable, predictions, blocks


@evaluate.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "data_format", type=click.Choice(["voc", "yolo"]), default="voc", show_default=True,
              help="voc: DATASET/annotations/*.xml + DATASET/images; yolo: DATASET/images + DATASET/labels.")
@click.option("--names", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YOLO class names file, one per line (default DATASET/classes.txt).")
@click.option("--images", "images_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the images (default DATASET/images); for an `annotate --save yolo|voc` output, "
                   "the folder its report paths are relative to.")
@MODEL_OPTION
@detector_options
@click.option("--incorrect-as", type=click.Choice(["ignore", "with_mask", "without_mask"]), default="ignore",
              show_default=True, help="How to treat incorrectly worn masks (mask_weared_incorrect, with_incorrect_mask) "
                                      "for a two-class model (ignore: neither found nor missed); a model with a "
                                      "mask_incorrect class scores them as that class unless relabelled here.")
@click.option("--classifier-only", is_flag=True, help="Classify the annotated boxes; no face detection.")
@click.option("--exclude", multiple=True, help="Image file name to leave out (repeatable).")
@click.option("--fit-box", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fit the box adjustment (median offset and scale) that makes the detector's boxes match this "
                   "set's, write it to this calibration file (for --box-adjust) and report the metrics with it.")
@click.option("--jobs", "-j", type=JobsType(), default="auto", show_default=True, callback=cap_jobs,
              help=JOBS_HELP)
@click.option("--overwrite", is_flag=True, help="Write into a non-empty OUT (its files of the same names are replaced).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def detect(dataset, out_dir, data_format, names, images_dir, model, face_detector, preset, threshold, scales, flip,
           nms_iou, first_pass, box_adjust, incorrect_as, classifier_only, exclude, fit_box, jobs, overwrite, quiet) -> None:
    """Face AP50, per-class AP50 and mAP50, recall by face size, label accuracy, PR curves, and the box
    style: face AP at IoU 0.3, 0.5 and 0.5:0.95 and the median offset and scale between matched predicted
    and annotated boxes.

    Writes metrics.json, pr_curves.png and (except with --classifier-only) the predictions as
    predictions.coco.json into OUT, which must be empty or new unless --overwrite is given. With
    --classifier-only also the classification report over the model's classes (for a three-class
    model, the 3x3 confusion, in confusion.png too) and the with_mask/without_mask report with the other
    faces and outputs left out (`classification_two_class`).
    """
    import dataclasses

    import maskmodel

    import numpy as np

    from maskmodel.evaluation.annotations import (DatasetError, canonical_labels, read_voc_folder, read_yolo_folder,
                                                  relabel)
    from maskmodel.evaluation.evaluate import (box_style, classification_report, classify_annotated_boxes,
                                               evaluate_detections, two_class_report)
    from maskmodel.io.imageio import ImageReadError
    from maskmodel.outputs.plots import confusion_image, curve_plot

    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise click.UsageError(f"{out_dir} is not empty: use --overwrite or another --out")
    if classifier_only and fit_box:
        raise click.BadParameter("needs detected boxes, not --classifier-only", param_hint="--fit-box")
    _check_fit_box(fit_box, overwrite, [p for p in (dataset, images_dir, names) if p is not None])
    skipped: list[tuple[str, str]] = []  # bad records: named, counted, left out (maskmodel.evaluation.annotations)
    try:
        if data_format == "voc":
            images = read_voc_folder(dataset, frozenset(exclude), skipped, images_dir)
        else:
            class_names = _class_names(names or dataset / "classes.txt")
            images = [i for i in read_yolo_folder(images_dir or dataset / "images", dataset / "labels", class_names, skipped)
                      if i.image_path.name not in exclude]
    except DatasetError as error:
        raise click.UsageError(str(error)) from error
    images = canonical_labels(images)
    if incorrect_as != "ignore":
        images = relabel(images, {"mask_incorrect": incorrect_as})
    if classifier_only:
        classifier = maskmodel.load(model)
        classes = list(classifier.contract.classes)
        readable, predictions = [], []
        for image in images:
            try:
                predictions += classify_annotated_boxes(classifier, [image])
                readable.append(image)
            except ImageReadError as error:
                skipped.append((str(image.image_path), str(error)))
        images = readable
        setup = {"mode": "classifier-only", "model": model}
    else:
        settings = detector_settings(face_detector, preset, threshold, scales, flip, nms_iou, box_adjust, first_pass)
        detector = mask_detector(model, settings)
        classes = detector.classes
        images, predictions, blocks = _detect_all(images, model, settings, jobs, quiet, skipped)
        setup = {"mode": "pipeline", "model": detector.model_name,
                 "face_detector": settings["detector"].name, **settings["detector"].resolved(),
                 "box_adjust": dataclasses.asdict(detector.box_adjust)}
    result = evaluate_detections(images, predictions, tuple(classes))
    result["box_style"] = box_style(images, predictions, tuple(classes))
    if not classifier_only:
        result["fitted"] = _fit_box(images, predictions, detector.box_adjust, fit_box, dataset)
    result["setup"] = {**setup, "data": str(dataset), "format": data_format, "mask_weared_incorrect": incorrect_as}
    result["skipped"] = [{"file": file, "reason": reason} for file, reason in skipped]
    result["boxes_clipped"] = sum(image.clipped for image in images)  # reached outside their image
    result["images_turned"] = sum(image.turned for image in images)  # by EXIF orientation, no <size> to say otherwise
    out_dir.mkdir(parents=True, exist_ok=True)
    if classifier_only:
        pairs = [(classes.index(f.label), [p.probabilities[c] for c in classes])
                 for i, preds in zip(images, predictions) for f, p in zip(i.faces, preds) if f.label in classes]
        labels, probabilities = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
        result["classification"] = classification_report(labels, probabilities, classes)
        result["classification_two_class"] = two_class_report(labels, probabilities, classes)
        matrix = np.array(result["classification"]["confusion_matrix"])
        _write_png(out_dir / "confusion.png", confusion_image(matrix, classes, setup["model"]))
        click.echo("confusion (rows: truth, columns: predicted " + ", ".join(classes) + "):")
        for name, row in zip(classes, matrix):
            click.echo(f"  {name:>14s} " + " ".join(f"{v:5d}" for v in row))
        two = result["classification_two_class"]
        click.echo(f"with/without balanced accuracy {two['balanced_accuracy']:.4f} (recall "
                   + ", ".join(f"{c} {r['recall']:.4f}" for c, r in two["per_class"].items()) + ")")
    curves = result.pop("curves")
    _write_json(out_dir / "metrics.json", result)
    if not classifier_only:
        from maskmodel.outputs.exports import COCO_NAME, coco_json

        _write(out_dir / COCO_NAME, coco_json(blocks, detector.classes))
    plot = curve_plot({f"{name} (AP50 {result['face_ap50'] if name == 'face' else result['ap50'][name]:.3f})":
                       (c["recall"], c["precision"]) for name, c in curves.items()},
                      f"precision-recall at IoU 0.5: {setup['model']}", "recall", "precision")
    _write_png(out_dir / "pr_curves.png", plot)
    for file, reason in skipped[:10]:
        click.echo(f"skipped {file}: {reason}", err=True)
    if skipped:
        click.echo(f"{len(skipped)} image(s) left out of the evaluation (listed in metrics.json 'skipped')", err=True)
    if result["images_turned"]:
        click.echo(f"{result['images_turned']} photo(s) without <size> are turned by their EXIF orientation (a phone's "
                   "portrait photo): their boxes were read against the turned image, as it is decoded and detected "
                   "(metrics.json 'images_turned')", err=True)
    if result["boxes_clipped"]:
        click.echo(f"{result['boxes_clipped']} annotated box(es) reached outside their image: clipped to it, or left "
                   "out when wholly outside (metrics.json 'boxes_clipped')", err=True)
    style = result["box_style"]
    click.echo(f"face AP50 {result['face_ap50']:.4f}, mAP50 {result['map50']:.4f}, precision {result['precision']:.4f}, "
               f"recall {result['recall']:.4f}, label accuracy {result['label_accuracy_on_matched']:.4f}")
    click.echo("face AP at IoU 0.3 / 0.5 / 0.5:0.95: " + " / ".join(f"{v:.4f}" for v in style["face_ap"].values())
               + "; annotated vs predicted boxes (median): " + _offset_text(style["offset"]))
    if fit_box:
        fitted = result["fitted"]
        click.echo(f"fitted box adjustment {fitted['box_adjust']} written to {fit_box}; with it: face AP50 "
                   f"{fitted['face_ap50']:.4f}, mAP50 {fitted['map50']:.4f}, face AP at IoU 0.3 / 0.5 / 0.5:0.95: "
                   + " / ".join(f"{v:.4f}" for v in fitted["face_ap"].values()))
    elif not classifier_only and _box_style_differs(result["fitted"]["extra"]):
        fitted = result["fitted"]
        click.echo(f"box style: {_style_text(fitted['extra'])}; face AP50 {result['face_ap50']:.4f} -> "
                   f"{fitted['face_ap50']:.4f}, mAP50 {result['map50']:.4f} -> {fitted['map50']:.4f} with "
                   f"--box-adjust FILE (write FILE with --fit-box FILE)")
    click.echo(f"written to {out_dir}")


def _offset_text(offset: dict) -> str:
    return (f"centre offset {offset['dx']:+.3f} widths, {offset['dy']:+.3f} heights; scale {offset['sw']:.3f} wide, "
            f"{offset['sh']:.3f} high ({offset['pairs']} faces matched at IoU 0.3)")


def _box_style_differs(extra: dict) -> bool:
    """Whether a fitted adjustment moves boxes by more than a little (2 % of a face, 3 % in size)."""
    return max(abs(extra["dx"]), abs(extra["dy"])) > 0.02 or max(abs(extra["sw"] - 1), abs(extra["sh"] - 1)) > 0.03


def _style_text(extra: dict) -> str:
    """How the annotated boxes sit relative to the reported ones, in words."""
    parts = [f"your boxes sit {abs(extra['dy']):.2f} face heights {'lower' if extra['dy'] > 0 else 'higher'}"]
    if abs(extra["dx"]) > 0.02:
        parts.append(f"{abs(extra['dx']):.2f} widths {'right' if extra['dx'] > 0 else 'left'}")
    for key, larger, smaller in (("sh", "taller", "shorter"), ("sw", "wider", "narrower")):
        if abs(extra[key] - 1) > 0.03:
            parts.append(f"{abs(extra[key] - 1) * 100:.0f} % {larger if extra[key] > 1 else smaller}")
    return ", ".join(parts) + " than the reported ones"


def _fit_box(images: list, predictions: list, current, path: Path | None, dataset: Path) -> dict:
    """Fit a box adjustment on top of `current` (so that it applies to the detector's own boxes), measure
    the predictions with it, and save it to `path` if given."""
    import dataclasses

    import numpy as np

    from maskmodel.detect.boxstyle import fit_box_adjust
    from maskmodel.evaluation.evaluate import box_style, evaluate_detections, face_matches

    _, _, _, predicted, truth = face_matches(images, predictions, ("with_mask", "without_mask"), 0.3)
    extra = fit_box_adjust(predicted, truth)
    fitted = current.then(extra)
    adjusted = [[dataclasses.replace(f, box=tuple(map(float, extra.apply(np.array([f.box]))[0]))) for f in faces]
                for faces in predictions]
    if path is not None:
        fitted.save(path, fitted_on=str(dataset), pairs=len(predicted))
    result = evaluate_detections(images, adjusted)
    return {"box_adjust": dataclasses.asdict(fitted), "extra": dataclasses.asdict(extra),
            "face_ap50": result["face_ap50"], "map50": result["map50"],
            "precision": result["precision"], "recall": result["recall"],
            "face_ap": box_style(images, adjusted)["face_ap"]}
