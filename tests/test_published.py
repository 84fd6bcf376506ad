"""The published classifiers: Keras and OpenCV DNN (ONNX) agree on real face crops, and the
manifest's input contract is the one the files really have."""

import cv2
import numpy as np
import pytest

import maskmodel
from helpers import COVID, CROWD_DEV
from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.classify.classifier import InputContract, MaskClassifier
from maskmodel.io.imageio import read_image

PUBLISHED = maskmodel.list_models(task="classification")
VERSIONS = [f"{name}@{version}" for name in PUBLISHED for version in maskmodel.zoo.manifest()["models"][name]["versions"]]


def real_crops(classifier, count: int = 24) -> list[np.ndarray]:
    """Crops by the runtime crop function: covid19 test images and annotated crowd-dev faces."""
    crops = []
    for path in sorted((COVID / "test" / "with_mask").iterdir())[: count // 3]:
        image = read_image(path)
        crops += classifier.crops(image, [(0, 0, image.shape[1], image.shape[0])])
    for annotated in read_voc_folder(CROWD_DEV)[:6]:
        image = read_image(annotated.image_path)
        crops += classifier.crops(image, [f.box for f in annotated.faces])
    return crops[:count]


def test_at_least_one_classifier_is_published():
    assert "mask-mobilenetv2-1.0" in PUBLISHED


BACKENDS = [("opencv", e) for e in (("new", "classic") if hasattr(cv2.dnn, "ENGINE_NEW") else ("auto",))]
BACKENDS += [("onnxruntime", "auto"), ("openvino", "auto")]


@pytest.mark.parametrize("backend,engine", BACKENDS)
@pytest.mark.parametrize("name", VERSIONS)
def test_keras_and_onnx_backends_agree(name, backend, engine):
    """Every backend in float32 gives Keras' probabilities (bf16 is checked against these in test_runtime.py)."""
    keras = pytest.importorskip("keras")
    if backend != "opencv":
        pytest.importorskip(backend)
    info = maskmodel.model_info(name)
    classifier = MaskClassifier(maskmodel.weights_path(name), InputContract.from_manifest(info.input, info.classes),
                                backend, engine, precision="fp32")
    model = keras.saving.load_model(maskmodel.weights_path(name, format="keras"))
    assert model.input_shape[1] == info.input["size"]
    assert model.output_shape[1] == len(info.classes)
    crops = real_crops(classifier)
    from_opencv = classifier.predict_crops(crops)
    from_keras = model.predict(np.stack([c[:, :, ::-1] for c in crops]).astype("float32"), verbose=0)
    assert np.abs(from_opencv - from_keras).max() <= 1e-4
    assert (from_opencv.argmax(1) == from_keras.argmax(1)).all()
    one_by_one = np.concatenate([classifier.predict_crops([c]) for c in crops[:4]])
    assert np.abs(one_by_one - from_opencv[:4]).max() <= 1e-5
