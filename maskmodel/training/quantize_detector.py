"""int8 CenterFace: ONNX Runtime static quantization, calibrated on training photos (never crowd-dev).

    python -m maskmodel.training.quantize_detector --out weights/centerface-int8-1.0.0.onnx \\
        ../shared/datasets/covid19-facemask/train ../shared/datasets/real-facemask ../shared/datasets/ilc-2021

Calibration photos: every n-th image (sorted paths) of each folder, `--per-folder` of them; for an
annotated VOC set (`annotations/` + `images/`) only the images of its train part
(`maskmodel.annotations.split_by_name`). Each is prepared as the detector prepares it: longer side
`--side` px, zero-padded to a square of that side. Needs the `onnx` package (the `[train]` extra) and
onnxruntime.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from maskmodel.centerface import PAD, dynamic_onnx
from maskmodel.crops import resize_image
from maskmodel.imageio import read_image

QUANTIZATION = {"format": "QDQ", "per_channel": True, "activations": "QUInt8", "weights": "QInt8",
                "calibration": "MinMax"}


def calibration_paths(folders: list[Path], per_folder: int) -> list[Path]:
    """Up to `per_folder` evenly spaced image paths of each folder (train part only for VOC sets)."""
    from maskmodel.annotations import read_voc_folder, split_by_name
    from maskmodel.crawl import iter_inputs

    chosen = []
    for folder in map(Path, folders):
        if (folder / "annotations").is_dir():
            paths = sorted(Path(i.image_path) for i in split_by_name(read_voc_folder(folder))[0])
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
    """Write the int8 model of the upstream CenterFace file `source` to `out`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._paths = iter(images)

        def get_next(self) -> dict | None:
            path = next(self._paths, None)
            return None if path is None else {"input.1": detector_blob(path, side)}

    with tempfile.TemporaryDirectory() as folder:
        dynamic = Path(folder) / "centerface-dynamic.onnx"
        dynamic.write_bytes(dynamic_onnx(Path(source).read_bytes()))
        quantize_static(str(dynamic), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="Folders of training photos.")
    parser.add_argument("--source", type=Path, default=None, help="Upstream CenterFace file (default: from the zoo).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-folder", type=int, default=40)
    parser.add_argument("--side", type=int, default=800)
    args = parser.parse_args()
    from maskmodel.zoo import weights_path

    source = args.source or weights_path("centerface")
    images = calibration_paths(args.folders, args.per_folder)
    quantize_centerface(source, args.out, images, args.side)
    print(f"{args.out}: {len(images)} calibration photos, {QUANTIZATION}")


if __name__ == "__main__":
    main()
