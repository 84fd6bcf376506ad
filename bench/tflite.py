"""TFLite exports of the published classifiers: accuracy against Keras on the same crops, size, OpenCV.

    python -m bench.tflite [--out bench/results/tflite.json]

For each published classifier: float16 and int8 TFLite files are exported (int8 calibrated on 100 covid19-facemask/train and 100 real-facemask crops); the Keras model and both exports classify the same crops (the 194
covid19-facemask/test images' largest faces and all 814 with/without-mask crowd-dev faces), and the
accuracy drop is reported. Whether OpenCV's DNN module (`cv2.dnn.readNetFromTFLite`) runs each file is
checked too.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

import maskmodel
from bench import common
from bench.tflite_check import crowd_crops, folder_crops, tflite_probabilities

SHARED = ROOT.parent / "shared"


def opencv_runs(path: Path, crop: np.ndarray) -> str:
    from maskmodel.runtime.opencv import has, missing_message

    if not has("tflite_importer"):
        return "no: " + missing_message("tflite_importer", "Reading TFLite")
    try:
        net = cv2.dnn.readNetFromTFLite(str(path))
        net.setInput(cv2.dnn.blobFromImage(crop, 1.0, crop.shape[:2][::-1], swapRB=True))
        return f"yes ({net.forward().ravel().round(4).tolist()})"
    except cv2.error as error:
        return "no: " + error.msg.strip().split(") ")[-1][:70]


def main() -> None:
    import keras

    from maskmodel.training.export import export_tflite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/tflite.json")
    args = parser.parse_args()
    results, lines = {}, ["| model | format | size (MB) | accuracy on 1008 crops | drop vs Keras (points) | "
                          "argmax agrees with Keras | OpenCV 5 DNN runs it |", "|---|---|---|---|---|---|---|"]
    temp = Path(tempfile.mkdtemp())
    for name in maskmodel.list_models(task="classification"):
        classifier = maskmodel.load(name, backend="opencv")
        covid, covid_labels = folder_crops(classifier, SHARED / "datasets/covid19-facemask/test", 1000)
        crowd, crowd_labels = crowd_crops(classifier, SHARED / "datasets/crowd-dev", 10_000)
        crops, labels = covid + crowd, np.array(covid_labels + crowd_labels)
        calibration = folder_crops(classifier, SHARED / "datasets/covid19-facemask/train", 50)[0] + \
            folder_crops(classifier, SHARED / "datasets/real-facemask", 50)[0]
        model = keras.saving.load_model(maskmodel.weights_path(name, format="keras"))
        reference = model.predict(np.stack([c[:, :, ::-1] for c in crops]).astype(np.float32), verbose=0)
        keras_accuracy = float((reference.argmax(1) == labels).mean())
        lines.append(f"| {name} | Keras | {maskmodel.weights_path(name, format='keras').stat().st_size / 1e6:.1f} | "
                     f"{keras_accuracy:.4f} | - | - | - |")
        results[name] = {"keras_accuracy": keras_accuracy}
        for quantization in ("float16", "int8"):
            path = temp / f"{name}-{quantization}.tflite"
            rgb = np.stack([c[:, :, ::-1] for c in calibration]).astype(np.float32)
            export_tflite(model, path, quantization, rgb if quantization == "int8" else None)
            probabilities = tflite_probabilities(path, crops)
            accuracy = float((probabilities.argmax(1) == labels).mean())
            agree = float((probabilities.argmax(1) == reference.argmax(1)).mean())
            runs = opencv_runs(path, crops[0])
            results[name][quantization] = {"accuracy": accuracy, "drop_points": (keras_accuracy - accuracy) * 100,
                                           "agreement": agree, "size": path.stat().st_size, "opencv": runs}
            lines.append(f"| {name} | TFLite {quantization} | {path.stat().st_size / 1e6:.1f} | {accuracy:.4f} | "
                         f"{(keras_accuracy - accuracy) * 100:.2f} | {agree:.4f} | {runs} |")
    common.publish("\n".join(lines), {"results": results}, args.out)


if __name__ == "__main__":
    main()
