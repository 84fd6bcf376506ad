"""Fit CenterFace's coarse-to-fine cascade: a cheap first pass at a small scale on every photo, the full pass
only where that first pass found no face or a face smaller than a threshold (in first-pass pixels).

    python -m bench.cascade [--coarse 320,384,416,448,512] [--fine 800] [--thresholds 12,16,20,24,28,32]
                            [--train-every 3] [--out bench/results/cascade.json]

The cascade's result on a photo is either its first pass or its full pass, so one run of each pass per photo
gives every (coarse scale, threshold) pair exactly. The threshold is chosen on crowd-dev and ILC train
(every `--train-every`-th photo of the project's split), never on ILC val; ILC val is reported to check that
the choice holds. Cost is the measured detection time of the passes (one thread, the default runtime):
coarse on every photo plus the full pass on the refined share, as a ratio to the full pass alone.
Prints a Markdown table and writes the JSON.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench import common
from bench.pipeline import load_sets
from maskmodel.detect.centerface import smallest_face
from maskmodel.evaluation.evaluate import evaluate_detections
from maskmodel.io.imageio import read_image
from maskmodel.pipeline import MaskDetector


def passes(images: list, scales: list[int]) -> dict[int, dict]:
    """Per scale: each photo's faces, the seconds of its detection pass, its smallest face in that pass's
    pixels (inf where none)."""
    detectors = {scale: MaskDetector("centerface", scales=(scale,), first_pass=0) for scale in scales}
    found = {scale: {"faces": [], "seconds": [], "smallest": []} for scale in scales}
    for annotated in images:
        image = read_image(annotated.image_path)
        for scale, pipeline in detectors.items():
            started = time.perf_counter()
            boxes = pipeline.face_detector.detect(image)
            found[scale]["seconds"].append(time.perf_counter() - started)
            found[scale]["smallest"].append(smallest_face(boxes, scale / max(image.shape[:2])))
            found[scale]["faces"].append(pipeline.detect(image).faces)
    return found


def cascade(found: dict, coarse: int, fine: int, threshold: float) -> tuple[list, np.ndarray]:
    """The cascade's faces per photo, and which photos it refined."""
    refined = np.array(found[coarse]["smallest"]) < threshold
    faces = [found[fine]["faces"][i] if refine else found[coarse]["faces"][i] for i, refine in enumerate(refined)]
    return faces, refined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coarse", default="320,384,416,448,512")
    parser.add_argument("--fine", type=int, default=800)
    parser.add_argument("--thresholds", default="12,16,20,24,28,32")
    parser.add_argument("--train-every", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/cascade.json")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    first_passs = [int(s) for s in args.coarse.split(",")]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    sets = {**load_sets(["crowd-dev", "ilc-val"]), "ilc-train": common.ilc_part("train")[::args.train_every]}
    found = {}
    for name, images in sets.items():
        found[name] = passes(images, [*first_passs, args.fine])
        print(f"done: {name} ({len(images)} photos)", file=sys.stderr)
    rows, results = [], []
    for coarse in first_passs:
        for threshold in [*thresholds, float("inf")]:
            entry = {"coarse": coarse, "threshold": threshold}
            for name, images in sets.items():
                faces, refined = cascade(found[name], coarse, args.fine, threshold)
                if threshold == float("inf"):  # the coarse pass alone: never refined unless no face
                    faces, refined = found[name][coarse]["faces"], np.zeros(len(images), bool)
                metrics = evaluate_detections(images, faces)
                fine_cost = sum(found[name][args.fine]["seconds"])
                cost = sum(found[name][coarse]["seconds"]) + sum(np.array(found[name][args.fine]["seconds"])[refined])
                entry[name] = {"map50": metrics["map50"], "face_ap50": metrics["face_ap50"],
                               "refined": float(refined.mean()), "cost_ratio": cost / fine_cost}
            results.append(entry)
    baseline = {name: evaluate_detections(images, found[name][args.fine]["faces"]) for name, images in sets.items()}
    header = ("| first pass | refine below (px) | " + " | ".join(
        f"{n} mAP50 (full pass {baseline[n]['map50']:.3f}) / refined / cost" for n in sets) + " |")
    rows = [header, "|---|---|" + "---|" * len(sets)]
    for entry in results:
        label = "first pass alone" if entry["threshold"] == float("inf") else f"{entry['threshold']:g}"
        rows.append(f"| {entry['coarse']} | {label} | " + " | ".join(
            f"{entry[n]['map50']:.3f} / {entry[n]['refined']:.2f} / {entry[n]['cost_ratio']:.2f}x" for n in sets) + " |")
    table = "\n".join(rows)
    common.publish(table, {"fine": args.fine, "machine": platform.machine(), "processor": platform.processor(),
                           "baseline": {n: {"map50": b["map50"], "face_ap50": b["face_ap50"]} for n, b in baseline.items()},
                           "photos": {n: len(i) for n, i in sets.items()}, "results": results}, args.out)


if __name__ == "__main__":
    main()
