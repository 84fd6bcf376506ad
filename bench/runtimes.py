"""Which runtime is fastest for each network on this CPU: the measurements behind `backend="auto"`
(`maskmodel.runtime.backends`) and the classifier's batch size per backend (`BATCH_SIZES`).

    python -m bench.runtimes [--rounds 7] [--photos 6] [--out bench/results/runtimes.json]

One thread (as each `annotate --jobs N` worker runs), every installed backend and precision:
- CenterFace at 800 px on crowd-dev photos (the default detector pass), ms per photo, and how far its
  boxes move from `cv2.dnn` float32's (max |heat map| difference, faces matched at IoU >= 0.99);
- the default classifier on real crowd-dev face crops, ms per face at batch sizes 1, 2, 4, 8, 16, and
  the largest difference in probability from `cv2.dnn` (OpenVINO with a static shape per batch size, as
  the classifier runs it); and the cost per face at 224 and 128 px inputs (the same network reshaped; the
  weights do not matter for speed), on the backends that can reshape it.
After a warm-up round (OpenVINO prepares its kernels for each new input shape once), rounds take the
configurations in turn, so load from other jobs on a shared machine falls on all alike; each number is
the median round of CPU time of this process (`time.process_time`: every thread of the runtimes counted,
less sensitive than wall time to other jobs). Ratios are against ONNX Runtime float32 in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

import maskmodel
from bench import common
from maskmodel.detect.boxes import box_iou
from maskmodel.detect.centerface import CenterFaceDetector
from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.io.imageio import read_image
from maskmodel.runtime import available, cpu_has_bf16, open_network

CROWD_DEV = common.SHARED / "datasets/crowd-dev"
CENTERFACE = common.SHARED / "models/face/centerface_bnmerged.onnx"
CLASSIFIER = "mask-mobilenetv2-0.35"
BATCHES = (1, 2, 4, 8, 16)


def configurations() -> list[tuple[str, str]]:
    configs = [("opencv", "fp32")]
    configs += [("onnxruntime", "fp32")] if available("onnxruntime") else []
    if available("openvino"):
        configs += [("openvino", "fp32")] + ([("openvino", "bf16")] if cpu_has_bf16() else [])
    return configs


def timed(function, *args) -> float:
    """CPU seconds of this process (all threads) spent in `function(*args)`."""
    started = time.process_time()
    function(*args)
    return time.process_time() - started


def matched(boxes: np.ndarray, reference: np.ndarray, iou: float = 0.99) -> float:
    """The share of `reference` faces that `boxes` has at IoU >= `iou` (1.0 with no faces)."""
    if not len(reference):
        return 1.0 if not len(boxes) else 0.0
    if not len(boxes):
        return 0.0
    return float(np.mean([box_iou(face[:4], boxes[:, :4]).max() >= iou for face in reference]))


def centerface(configs, photos, rounds) -> dict:
    detectors = {c: CenterFaceDetector(CENTERFACE, backend=c[0], precision=c[1]) for c in configs}
    reference = detectors[("opencv", "fp32")]
    quality = {}
    for config, detector in detectors.items():
        shares = [matched(detector.detect(p), reference.detect(p)) for p in photos]
        quality[config] = float(np.mean(shares))
    times = {c: [] for c in configs}
    for _ in range(rounds):
        for config, detector in detectors.items():
            times[config].append(sum(timed(detector.detect, p) for p in photos) / len(photos))
    times = {config: values[1:] for config, values in times.items()}  # the first round warms up
    return {config: {"ms_per_photo": statistics.median(times[config]) * 1000,
                     "faces_matched_iou_0.99": quality[config]} for config in configs}


def classifier(configs, crops, rounds) -> dict:
    file = maskmodel.weights_path(CLASSIFIER)
    size = crops[0].shape[0]  # the contract's input size
    # OpenVINO with a static shape per batch size, as the classifier compiles it (dynamic: 2x slower)
    networks = {c: open_network(file, c[0], c[1], threads=1, static_shapes=True) for c in configs}
    blobs = {b: cv2.dnn.blobFromImages(crops[:b], 1.0, (size, size), swapRB=True) for b in BATCHES}
    everything = cv2.dnn.blobFromImages(crops, 1.0, (size, size), swapRB=True)
    reference = networks[("opencv", "fp32")].run(everything)[0]
    differences = {c: float(np.abs(n.run(everything)[0] - reference).max()) for c, n in networks.items()}
    times = {(c, b): [] for c in configs for b in BATCHES}
    for _ in range(rounds):
        for config, network in networks.items():
            for batch, blob in blobs.items():
                times[config, batch].append(timed(network.run, blob) / batch)
    times = {key: values[1:] for key, values in times.items()}  # the first round warms up
    return {config: {"ms_per_face": {b: statistics.median(times[config, b]) * 1000 for b in BATCHES},
                     "max_probability_difference": differences[config]} for config in configs}


def classifier_sizes(configs, rounds) -> dict:
    """ms per face at 224 and 128 px inputs, batch 8: OpenVINO reshapes the network (same weights)."""
    if not available("openvino"):
        return {}
    import openvino

    core = openvino.Core()
    model_bytes = Path(maskmodel.weights_path(CLASSIFIER)).read_bytes()
    blobs = {size: np.random.default_rng(0).uniform(0, 255, (8, 3, size, size)).astype(np.float32) for size in (224, 128)}
    requests = {}
    for backend, precision in configs:
        if backend != "openvino":
            continue
        for size in blobs:
            model = core.read_model(model_bytes, b"")
            model.reshape({model.inputs[0].any_name: [8, 3, size, size]})
            compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                                                         "INFERENCE_NUM_THREADS": 1})
            requests[precision, size] = compiled.create_infer_request()
    times = {key: [] for key in requests}
    for _ in range(rounds):
        for (precision, size), request in requests.items():
            times[precision, size].append(timed(request.infer, {0: blobs[size]}) / 8)
    return {f"openvino {precision} {size} px": statistics.median(t[1:]) * 1000 for (precision, size), t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="Rounds, the first of which warms up.")
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/runtimes.json")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    configs = configurations()
    annotated = [a for a in read_voc_folder(CROWD_DEV) if a.image_path.name not in common.CROWD_DEV_OVERLAP]
    photos = [read_image(a.image_path) for a in annotated[: args.photos]]
    probe = maskmodel.load(CLASSIFIER, backend="opencv")
    crops = [c for a in annotated[:12] for c in probe.crops(read_image(a.image_path), [f.box for f in a.faces])][:32]
    detector = centerface(configs, photos, args.rounds)
    classify = classifier(configs, crops, args.rounds)
    small = classifier_sizes(configs, args.rounds)
    base = ("onnxruntime", "fp32") if ("onnxruntime", "fp32") in detector else ("opencv", "fp32")
    name = {c: f"{c[0]} {c[1]}" for c in configs}
    lines = ["| backend | CenterFace 800 px, CPU ms / photo | vs " + name[base] + " | faces at IoU >= 0.99 of cv2.dnn's | "
             + " | ".join(f"classifier CPU ms / face, batch {b}" for b in BATCHES) + " | classifier vs " + name[base]
             + " (best batch) | max probability difference from cv2.dnn |",
             "|---|---|---|---|" + "---|" * len(BATCHES) + "---|---|"]
    best = {c: min(classify[c]["ms_per_face"].values()) for c in configs}
    for c in configs:
        d, k = detector[c], classify[c]
        lines.append(f"| {name[c]} | {d['ms_per_photo']:.1f} | {detector[base]['ms_per_photo'] / d['ms_per_photo']:.2f}x | "
                     f"{d['faces_matched_iou_0.99']:.3f} | "
                     + " | ".join(f"{k['ms_per_face'][b]:.2f}" for b in BATCHES)
                     + f" | {best[base] / best[c]:.2f}x | {k['max_probability_difference']:.4f} |")
    table = "\n".join(lines)
    if small:
        table += "\n\nClassifier input size (OpenVINO, batch 8, CPU ms / face): " + ", ".join(
            f"{key}: {value:.2f}" for key, value in small.items())
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or ''} bf16: {cpu_has_bf16()}, "
          f"one thread, {len(photos)} photos, {len(crops)} crops, {args.rounds} rounds")
    common.publish(table, {"centerface": {name[c]: v for c, v in detector.items()},
                           "classifier": {name[c]: v for c, v in classify.items()},
                           "classifier_input_size": small, "bf16": cpu_has_bf16()}, args.out)


if __name__ == "__main__":
    main()
