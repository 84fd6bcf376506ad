"""TFLite exports of the default classifier: float16 (also run by OpenCV 5's DNN module) and
full-integer int8 calibrated on training crops, checked against Keras on the same real face crops."""

import cv2
import numpy as np
import pytest

pytest.importorskip("keras")

import maskmodel  # noqa: E402
from helpers import COVID, CROWD_DEV  # noqa: E402
from bench.tflite_check import crowd_crops, folder_crops, tflite_probabilities  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import keras

    from maskmodel.training.export import export_tflite

    name = maskmodel.DEFAULT_CLASSIFIER
    classifier = maskmodel.load(name, backend="opencv")
    covid, covid_labels = folder_crops(classifier, COVID / "test", 25)
    crowd, crowd_labels = crowd_crops(classifier, CROWD_DEV, 150)
    calibration, _ = folder_crops(classifier, COVID / "train", 30)
    model = keras.saving.load_model(maskmodel.weights_path(name, format="keras"))
    folder = tmp_path_factory.mktemp("tflite")
    files = {}
    for quantization in ("float16", "int8"):
        rgb = np.stack([c[:, :, ::-1] for c in calibration]).astype(np.float32)
        files[quantization] = export_tflite(model, folder / f"{quantization}.tflite", quantization,
                                            rgb if quantization == "int8" else None)
    crops = covid + crowd
    reference = model.predict(np.stack([c[:, :, ::-1] for c in crops]).astype(np.float32), verbose=0)
    return files, crops, np.array(covid_labels + crowd_labels), reference


def test_float16_matches_keras_and_runs_in_opencv(setup):
    files, crops, labels, reference = setup
    probabilities = tflite_probabilities(files["float16"], crops)
    assert np.abs(probabilities - reference).max() < 0.05
    assert (probabilities.argmax(1) == reference.argmax(1)).mean() >= 0.99
    net = cv2.dnn.readNetFromTFLite(str(files["float16"]))
    size = crops[0].shape[0]  # the default classifier's input size
    net.setInput(cv2.dnn.blobFromImage(crops[0], 1.0, (size, size), swapRB=True))
    assert np.abs(net.forward().ravel() - probabilities[0]).max() < 1e-3


def test_int8_accuracy_drop_is_at_most_two_points(setup):
    files, crops, labels, reference = setup
    probabilities = tflite_probabilities(files["int8"], crops)
    keras_accuracy = (reference.argmax(1) == labels).mean()
    int8_accuracy = (probabilities.argmax(1) == labels).mean()
    print(f"Keras {keras_accuracy:.4f}, int8 {int8_accuracy:.4f} on {len(labels)} crops")
    # at most two points, counted in crops: 0.975 - 0.955 (4 of 200 crops, measured here) is 0.020000000000000018
    # in floating point; 0.975 -> 0.960 on an earlier machine, for the 128 px default (3.0.0) on these crops
    lost = int((reference.argmax(1) == labels).sum()) - int((probabilities.argmax(1) == labels).sum())
    assert lost <= 0.02 * len(labels)
    assert files["int8"].stat().st_size < 0.75 * files["float16"].stat().st_size
