"""int8 CenterFace on OpenVINO (NNCF post-training quantization) against float32 and bf16, on this CPU.

    pip install nncf && python -m bench.openvino_int8 [--per-folder 20] [--out bench/results/openvino_int8.json]

Calibration: the training photos of `bench.centerface_int8.calibration_paths` (covid19-facemask/train,
real-facemask, ilc-2021 train; never crowd-dev), each at 800 px (longer side), zero-padded to a square; NNCF's
mixed preset, the whole network quantized. Speed: one thread, a 1x3x544x800 input (a crowd-dev photo at
the default's 800 px), median of 15 runs after 3 warm-ups, the precisions taking turns over 2 rounds.
Measures speed only: a variant faster than bf16 would then need the accuracy check of issue 31 (face AP50
and mAP50 within 0.005 of float32 on crowd-dev and ILC val) before it could be a default.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench import common
from bench.centerface_int8 import CALIBRATION, calibration_paths, detector_blob
from maskmodel.detect.centerface import dynamic_onnx
from maskmodel.zoo.downloads import cache_dir

SIDE, SHAPE = 800, (1, 3, 544, 800)


def milliseconds(core, model, hint: str, blob: np.ndarray) -> float:
    config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
              "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
    request = core.compile_model(model, "CPU", config).create_infer_request()
    for _ in range(3):
        request.infer({0: blob})
    times = []
    for _ in range(15):
        started = time.perf_counter()
        request.infer({0: blob})
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    import nncf
    import openvino

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-folder", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/openvino_int8.json")
    args = parser.parse_args()
    core = openvino.Core()
    model = core.read_model(dynamic_onnx((cache_dir() / "centerface_bnmerged.onnx").read_bytes()), b"")
    blobs = [detector_blob(path, SIDE) for path in calibration_paths(CALIBRATION, args.per_folder)]
    started = time.perf_counter()
    quantized = nncf.quantize(model, nncf.Dataset(blobs), preset=nncf.QuantizationPreset.MIXED, subset_size=len(blobs))
    quantize_seconds = time.perf_counter() - started
    blob = np.random.default_rng(0).uniform(0, 255, SHAPE).astype(np.float32)
    variants = {"fp32": (model, "f32"), "bf16": (model, "bf16"), "int8 (rest fp32)": (quantized, "f32"),
                "int8 (rest bf16)": (quantized, "bf16")}
    rounds = [{name: milliseconds(core, m, hint, blob) for name, (m, hint) in variants.items()} for _ in range(2)]
    ms = {name: statistics.median(r[name] for r in rounds) for name in variants}
    lines = ["| CenterFace 800x544 on OpenVINO, one thread | ms | vs bf16 (the default) |", "|---|---|---|"]
    lines += [f"| {name} | {value:.1f} | {ms['bf16'] / value:.2f}x |" for name, value in ms.items()]
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, OpenVINO {openvino.__version__}, NNCF {nncf.__version__}; "
          f"{len(blobs)} calibration photos, quantized in {quantize_seconds:.0f} s")
    common.publish("\n".join(lines), {"ms": ms, "rounds": rounds, "calibration_photos": len(blobs),
                                      "quantize_seconds": quantize_seconds}, args.out)


if __name__ == "__main__":
    main()
