"""int8 CenterFace: ONNX Runtime static quantization, calibrated on training photos (never crowd-dev),
measured against the float model on crowd-dev and ILC val.

    python -m bench.centerface_int8 [--out .cache/centerface-int8.onnx] [--per-folder 40]

Calibration photos: every n-th image (sorted paths) of covid19-facemask/train, real-facemask and
ilc-2021 (its train part only, `bench.common.ilc_part`), `--per-folder` of each. Each is prepared as the detector prepares it: longer side
`--side` px, zero-padded to a square of that side. Needs the `onnx` package (the `[train]` extra) and
onnxruntime.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench.common import CROWD_DEV_OVERLAP, ilc_part
from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.detect.boxstyle import BOX_STYLES
from maskmodel.detect.centerface import PAD, CenterFaceDetector, dynamic_onnx
from maskmodel.classify.crops import resize_image
from maskmodel.evaluation.evaluate import evaluate_detections
from maskmodel.io.imageio import read_image
from maskmodel.pipeline import Face

SHARED = ROOT.parent / "shared"
CALIBRATION = [SHARED / "datasets/covid19-facemask/train", SHARED / "datasets/real-facemask", SHARED / "datasets/ilc-2021"]

# The head (shared 3x3 conv + ReLU, the four 1x1 output convs, the sigmoid) stays float: quantizing it
# cost 0.01-0.03 face AP50; its outputs are these tensors of the upstream graph.
FLOAT_HEAD = ("533", "535", "536", "537", "538", "539", "540")
QUANTIZATION = {"opset": 13, "float_head": True, "format": "QDQ", "per_channel": True, "activations": "QUInt8",
                "weights": "QInt8", "calibration": "MinMax"}


def calibration_paths(folders: list[Path], per_folder: int) -> list[Path]:
    """Up to `per_folder` evenly spaced image paths of each folder (train part only for VOC sets)."""
    from maskmodel.io.crawl import iter_inputs

    chosen = []
    for folder in map(Path, folders):
        if (folder / "annotations").is_dir():
            paths = sorted(Path(i.image_path) for i in ilc_part("train"))
        else:
            paths = sorted(item.path for item in iter_inputs([folder]))
        step = max(1, len(paths) // per_folder)
        chosen += paths[::step][:per_folder]
    return chosen


def detector_blob(path: Path, side: int) -> np.ndarray:
    """A 1 x 3 x S x S RGB float32 blob: the image with its longer side at `side`, zero-padded."""
    image = read_image(path)
    factor = side / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    padded_side = -(-side // PAD) * PAD
    blob = np.zeros((1, 3, padded_side, padded_side), np.float32)
    blob[0, :, :size[1], :size[0]] = resize_image(image, size)[..., ::-1].transpose(2, 0, 1)
    return blob


def quantize_centerface(source: Path, out: Path, images: list[Path], side: int = 800) -> None:
    """Write the int8 model (MinMax calibration) of the upstream CenterFace file `source` to `out`."""
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._paths = iter(images)

        def get_next(self) -> dict | None:
            path = next(self._paths, None)
            return None if path is None else {"input.1": detector_blob(path, side)}

    with tempfile.TemporaryDirectory() as folder:
        dynamic = Path(folder) / "centerface-dynamic.onnx"
        model = version_converter.convert_version(onnx.load_from_string(dynamic_onnx(Path(source).read_bytes())), 13)
        for node in model.graph.node:  # upstream nodes are unnamed; exclusion goes by name
            node.name = node.name or node.output[0]
        onnx.save(model, dynamic)  # per-channel int8 needs opset 13
        quantize_static(str(dynamic), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=[n.name for n in model.graph.node if n.output[0] in FLOAT_HEAD])


def face_ap(detector: CenterFaceDetector, images: list) -> tuple[dict, float]:
    """Detector-only metrics (default box style) and seconds over `images` (decoded beforehand)."""
    pixels = [read_image(i.image_path) for i in images]
    detector.detect(pixels[0])
    started = time.perf_counter()
    boxes = [BOX_STYLES["centerface"].apply(detector.detect(p)) for p in pixels]
    seconds = time.perf_counter() - started
    faces = [[Face(tuple(map(float, b[:4])), float(b[4]), "with_mask", {"with_mask": 1.0, "without_mask": 0.0})
              for b in found] for found in boxes]
    return evaluate_detections(images, faces), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache/centerface-int8.onnx")
    parser.add_argument("--per-folder", type=int, default=40)
    parser.add_argument("--side", type=int, default=800)
    args = parser.parse_args()
    from maskmodel.zoo import weights_path

    cv2.setNumThreads(1)
    source = weights_path("centerface")
    calibration = calibration_paths(CALIBRATION, args.per_folder)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    quantize_centerface(source, args.out, calibration, args.side)
    sets = {"crowd-dev": read_voc_folder(SHARED / "datasets/crowd-dev", CROWD_DEV_OVERLAP),
            "ILC val": ilc_part("val")}
    lines = [f"{len(calibration)} calibration photos, {QUANTIZATION}, threshold 0.3, one thread", "",
             "| set | longer side | face AP50 float | face AP50 int8 | difference | precision / recall int8 | "
             "speed int8 / float |", "|---|---|---|---|---|---|---|"]
    for name, images in sets.items():
        for side in (640, 800):
            (exact, exact_s), (small, small_s) = (face_ap(CenterFaceDetector(path, scales=(side,)), images)
                                                  for path in (source, args.out))
            lines.append(f"| {name} | {side} | {exact['face_ap50']:.3f} | {small['face_ap50']:.3f} | "
                         f"{small['face_ap50'] - exact['face_ap50']:+.3f} | {small['precision']:.2f} / "
                         f"{small['recall']:.2f} | {exact_s / small_s:.2f}x |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
