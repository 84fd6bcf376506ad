import numpy as np
import pytest

keras = pytest.importorskip("keras")  # the [train] extra; CI installs it

from maskmodel.training.builder import block_output, build_model, set_trainable_blocks  # noqa: E402


@pytest.mark.parametrize("alpha,size", [(1.0, 224), (0.35, 224), (0.35, 128)])
def test_shapes_and_in_model_preprocessing(alpha, size):
    model = build_model(alpha=alpha, input_size=size, weights=None, classes=3)
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 3)
    preprocess = model.get_layer("preprocess")
    scaled = np.asarray(preprocess(np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")))
    assert np.allclose(scaled, [-1.0, 0.0, 1.0])
    probabilities = model.predict(np.full((2, size, size, 3), 128, "float32"), verbose=0)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_imagenet_weights_offline_through_keras_cache():
    from_imagenet = build_model(alpha=0.35, weights="imagenet")
    random_init = build_model(alpha=0.35, weights=None)
    kernel = from_imagenet.get_layer("Conv1").get_weights()[0]
    assert not np.allclose(kernel, random_init.get_layer("Conv1").get_weights()[0])
    import h5py
    from helpers import SHARED

    h5 = SHARED / "models/keras/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    with h5py.File(h5, "r") as stored:
        name = [n for n in stored["Conv1"].keys()]
        group = stored["Conv1"][name[0]] if name and not name[0].startswith("kernel") else stored["Conv1"]
        stored_kernel = np.asarray(group[next(k for k in group.keys() if k.startswith("kernel"))])
    assert np.allclose(kernel, stored_kernel)


def test_imagenet_weights_fit_every_input_size():
    """A no-top MobileNetV2's weights do not depend on the input size: 128 px starts from the 224 px file."""
    small, full = build_model(alpha=0.35, input_size=128), build_model(alpha=0.35, input_size=224)
    for name in ("Conv1", "block_8_expand", "Conv_1"):
        for a, b in zip(small.get_layer(name).get_weights(), full.get_layer(name).get_weights()):
            assert np.array_equal(a, b)


def test_weights_from_path(tmp_path):
    model = build_model(alpha=0.35, input_size=96, weights=None)
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    again = build_model(alpha=0.35, input_size=96, weights=path)
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype("float32")
    assert np.allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    ({"weights": "imagenet21k"}, "weights"),
    ({"alpha": 0.6}, "alpha"),
    ({"input_size": 16}, "input_size"),
    ({"classes": 1, "weights": None}, "classes"),
])
def test_bad_arguments_fail_before_building(kwargs, message):
    with pytest.raises(ValueError, match=f"Received: {message}"):
        build_model(**kwargs)


def test_freeze_and_unfreeze_by_block():
    model = build_model(alpha=0.35, input_size=96, weights=None)
    set_trainable_blocks(model, None)
    assert [l.name for l in model.layers if l.trainable and l.weights] == ["predictions"]
    set_trainable_blocks(model, 15)
    trainable = {l.name for l in model.layers if l.trainable and l.weights}
    assert {"block_15_expand", "block_16_project", "Conv_1", "predictions"} <= trainable
    assert "block_14_expand" not in trainable and "block_15_expand_BN" not in trainable


@pytest.mark.parametrize("first_block", [1, 4, 12, 14, 16])
def test_model_splits_into_trunk_and_top_at_every_block(first_block):
    model = build_model(alpha=0.35, input_size=96, weights=None)
    split = model.get_layer(block_output(model, first_block - 1)).output
    trunk, top = keras.Model(model.input, split), keras.Model(split, model.output)
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype("float32")
    assert np.allclose(top.predict(trunk.predict(x, verbose=0), verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_imagenet_weights_missing_offline_is_one_maskmodel_error(tmp_path, monkeypatch):
    """Without the file and without a network: a UsageError naming the remedy, raised before Keras tries its
    download (never Keras' `Exception: URL fetch failure`); after `models install --from` it builds."""
    from helpers import SHARED
    from maskmodel.errors import UsageError
    from maskmodel.training import imagenet

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(imagenet, "BASE_URL", "http://127.0.0.1:9/")  # nothing listens there: offline
    with pytest.raises(imagenet.ImagenetWeightsMissing) as error:
        build_model(alpha=0.35, weights="imagenet")
    assert isinstance(error.value, UsageError) and "\n" not in str(error.value)
    assert "maskmodel models install --from" in str(error.value) and str(tmp_path / "keras" / "models") in str(error.value)
    assert not (tmp_path / "keras").exists()  # Keras never started a download
    imagenet.install_from(SHARED / "models" / "keras")
    assert build_model(alpha=0.35, weights="imagenet").output_shape == (None, 2)
