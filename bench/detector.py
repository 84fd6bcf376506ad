"""A fine-tuned face detector against the published CenterFace, on the photos it never saw (issue 42's rule).

    python -m bench.detector RUN[@THRESHOLD] [RUN[@THRESHOLD] ...] [--out bench/results/detector.json]

Sets: crowd-dev's held-back part (the photos not in `datasets/crowd-dev-detector-train.txt`, less the two that
overlap real-facemask: 76 photos) and ILC val (`bench.common.ilc_part("val")`). Every detector runs at the
default's settings (CenterFace's first pass at 384 px, 800 px where faces are small; threshold 0.3), so at
the default's cost (the same network), with the default classifier; `RUN@0.2` runs a detector at another
score threshold. Metrics: face AP at IoU 0.3 and 0.5, mAP50, precision of the drawn boxes and recall of faces
under 16 px; and, because a fine-tuned detector's scores are not the original's, the recall under 16 px of
each run at the lowest threshold where its drawn boxes are at least as precise as the original's (its faces
filtered by score: the first pass still decides at the run's threshold). Cost: milliseconds a photo
(decode, detection, classification), the detectors taking turns photo by photo, as a ratio to the original.
Prints a Markdown table with each figure's difference to the original, writes the JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench import common
from maskmodel.detect.detector_config import DetectorConfig
from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.evaluation.evaluate import box_style, evaluate_detections
from maskmodel.io.imageio import read_image
from maskmodel.pipeline import MaskDetector
from maskmodel.training.centerface_recipe import crowd_dev_train_names
from maskmodel.zoo import DEFAULT_CLASSIFIER

THRESHOLDS = np.round(np.arange(0.1, 0.71, 0.02), 2)


def crowd_dev_held_back() -> list:
    """crowd-dev's photos a fine-tuned detector never trained on (the overlap with real-facemask left out)."""
    trained = set(crowd_dev_train_names()) | common.CROWD_DEV_OVERLAP
    return [image for image in read_voc_folder(common.SHARED / "datasets/crowd-dev") if image.image_path.name not in trained]


def run_all(detectors: dict, images: list) -> tuple[dict, dict]:
    """Each detector's faces per image and seconds per image, the detectors taking turns image by image."""
    predictions = {name: [] for name in detectors}
    seconds = {name: [] for name in detectors}
    for image in images:
        for name, detector in detectors.items():
            started = time.perf_counter()
            predictions[name].append(detector.detect(read_image(image.image_path)))
            seconds[name].append(time.perf_counter() - started)
    return predictions, seconds


def measure(detector: MaskDetector, images: list, predictions: list) -> dict:
    """The metrics of one detector's faces on one set."""
    classes = tuple(detector.classes)
    metrics = evaluate_detections(images, predictions, classes)
    style = box_style(images, predictions, classes)
    return {"face_ap50": metrics["face_ap50"], "face_ap30": style["face_ap"]["0.3"], "map50": metrics["map50"],
            "precision": metrics["precision"], "recall": metrics["recall"],
            "recall_small": metrics["recall_by_size"].get("<16", float("nan")),
            "faces": metrics["faces"], "images": metrics["images"]}


def small_recall_at_precision(images: list, predictions: list, classes: tuple, precision: float,
                              own_threshold: float) -> tuple[float, float]:
    """The lowest threshold, the detector's own or one of `THRESHOLDS` above it, whose drawn boxes are at least
    `precision` precise, and the recall of faces under 16 px there."""
    for threshold in [own_threshold, *THRESHOLDS[THRESHOLDS > own_threshold + 1e-9]]:
        kept = [[face for face in faces if face.score >= threshold] for faces in predictions]
        metrics = evaluate_detections(images, kept, classes)
        if metrics["precision"] >= precision - 1e-9:
            return float(threshold), metrics["recall_by_size"].get("<16", float("nan"))
    return float("nan"), float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", type=Path, default=Path("bench/results/detector.json"))
    args = parser.parse_args()
    sets = {"crowd-dev held-back": crowd_dev_held_back(), "ILC val": common.ilc_part("val")}
    detectors = {"original centerface@1.0.0": MaskDetector(DetectorConfig("centerface"), DEFAULT_CLASSIFIER)}
    for spec in args.runs:
        run, _, threshold = spec.partition("@")
        config = DetectorConfig.trained(run, score_threshold=float(threshold) if threshold else None)
        detectors[spec] = MaskDetector(config, DEFAULT_CLASSIFIER)
    results: dict = {}
    for set_name, images in sets.items():
        predictions, seconds = run_all(detectors, images)
        original = None
        for name, detector in detectors.items():
            metrics = measure(detector, images, predictions[name])
            metrics["ms_per_photo"] = 1000 * float(np.mean(seconds[name]))
            if original is None:
                original = metrics
            threshold, recall = small_recall_at_precision(images, predictions[name], tuple(detector.classes),
                                                          original["precision"], detector.face_detector.score_threshold)
            metrics.update(matched_threshold=threshold, recall_small_matched=recall)
            results.setdefault(set_name, {})[name] = metrics
    keys = ("face_ap50", "map50", "face_ap30", "precision", "recall_small", "recall_small_matched", "ms_per_photo")
    lines = ["| set | detector | " + " | ".join(keys) + " | threshold at the original's precision |",
             "|---|---|" + "---|" * (len(keys) + 1)]
    for set_name, by_detector in results.items():
        original = next(iter(by_detector.values()))
        for name, metrics in by_detector.items():
            cells = [f"{metrics[k]:.3f}" + ("" if metrics is original else f" ({metrics[k] - original[k]:+.3f})")
                     for k in keys[:-1]]
            cells.append(f"{metrics['ms_per_photo']:.0f} ({metrics['ms_per_photo'] / original['ms_per_photo']:.2f}x)")
            lines.append(f"| {set_name} ({metrics['images']} photos, {metrics['faces']} faces) | {name} | "
                         + " | ".join(cells) + f" | {metrics['matched_threshold']} |")
    common.publish("\n".join(lines), {"results": results, "sets": {k: len(v) for k, v in sets.items()}}, args.out)


if __name__ == "__main__":
    main()
