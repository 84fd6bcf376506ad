"""`build_model()`: MobileNetV2 + a small classification head, preprocessing inside the graph.

The model takes RGB pixels in 0..255 (NHWC) and returns softmax probabilities. The rescaling to
MobileNetV2's [-1, 1] is its first layer, so no caller can feed it differently preprocessed pixels.

Reference:
    Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
LAST_BLOCK = 16


def build_model(
    alpha: float = 1.0,
    input_size: int = 224,
    weights: str | os.PathLike | None = "imagenet",
    classes: int = 2,
    dropout: float = 0.2,
    name: str | None = None,
) -> keras.Model:
    """Build the mask classifier: rescaling, MobileNetV2 backbone, pooling, dropout, softmax.

    Args:
        alpha: MobileNetV2 width multiplier. Defaults to `1.0`.
        input_size: side of the square RGB input in pixels. Defaults to `224`.
        weights: `None` (random init), `"imagenet"` (backbone from Keras' ImageNet file of this alpha at
            224 px, fetched through Keras' own cache under `$KERAS_HOME`, default `~/.keras`; a no-top
            MobileNetV2's weights do not depend on the input size, so every `input_size` starts from the same
            file; offline, install it first with `maskmodel models install --from DIR`), or the path of a
            `.keras` or `.weights.h5` file of this architecture. Defaults to `"imagenet"`.
        classes: number of output classes. Defaults to `2`.
        dropout: dropout rate before the last layer. Defaults to `0.2`.
        name: model name. Defaults to `mask_mobilenetv2_{alpha}_{input_size}`.

    Returns:
        A Keras model mapping `(batch, input_size, input_size, 3)` RGB 0..255 to `(batch, classes)`.

    Raises:
        ImagenetWeightsMissing: `weights="imagenet"`, the file is not in Keras' folder and cannot be
            downloaded (a `maskmodel.errors.UsageError` naming the remedy, raised before Keras tries).
    """
    if alpha not in IMAGENET_ALPHAS:
        raise ValueError(f"Expected alpha in {IMAGENET_ALPHAS}. Received: alpha={alpha!r}")
    if not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"Expected an integer input_size >= 32. Received: input_size={input_size!r}")
    if not (weights is None or weights == "imagenet" or Path(weights).is_file()):
        raise ValueError(
            "Expected weights to be None, 'imagenet' or the path of an existing weights file. "
            f"Received: weights={weights!r}"
        )
    if not isinstance(classes, int) or classes < 2:
        raise ValueError(f"Expected classes >= 2. Received: classes={classes!r}")
    if weights == "imagenet":  # one clear error offline, not Keras' "URL fetch failure"
        from maskmodel.training.imagenet import check_imagenet_weights

        check_imagenet_weights(alpha)

    import keras

    inputs = keras.Input((input_size, input_size, 3), name="image")
    scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    backbone = keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3),
        input_tensor=scaled,
        alpha=alpha,
        include_top=False,
        weights=None,
    )
    if weights == "imagenet":
        _load_weights(backbone, imagenet_file(alpha))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(backbone.output)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name or f"mask_mobilenetv2_{alpha}_{input_size}")
    if weights is not None and weights != "imagenet":
        _load_weights(model, weights)
    return model


def check_weights_file(path: str | os.PathLike) -> None:
    """Refuse (`UsageError`, one line) a weights file that is not what Keras loads, before any work: a
    `.keras` file must be a zip archive, any other file an HDF5 file that h5py opens."""
    import zipfile

    from maskmodel.errors import UsageError

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"the weights file {path} does not exist")
    if path.suffix.lower() == ".keras":
        if not zipfile.is_zipfile(path):
            raise UsageError(f"{path} is not a .keras model file (a zip archive): damaged or of another kind")
        return
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except (OSError, ValueError) as error:
        raise UsageError(f"{path} is not a Keras weights file (HDF5: {_first_line(error)}): damaged or of "
                         "another kind") from None


def _load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """`model.load_weights(path)`, a failure as one line (`UsageError`) naming the file."""
    from maskmodel.errors import UsageError

    try:
        model.load_weights(str(path))
    except Exception as error:  # Keras and h5py raise ValueError, OSError, KeyError for files that do not fit
        raise UsageError(f"cannot load the weights {path} into a MobileNetV2 of this width and these classes "
                         f"({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def imagenet_file(alpha: float) -> str:
    """Keras' no-top ImageNet MobileNetV2 file of width `alpha` (224 px), from Keras' cache or downloaded."""
    import keras

    from maskmodel.training.imagenet import BASE_URL, file_name

    name = file_name(alpha)
    return keras.utils.get_file(name, BASE_URL + name, cache_subdir="models")


def block_of(layer_name: str) -> int | None:
    """Backbone block number of a MobileNetV2 layer (0 for the stem, 17 for `Conv_1`), else None."""
    if layer_name.startswith("block_"):
        return int(layer_name.split("_")[1])
    if layer_name in ("Conv1", "bn_Conv1", "Conv1_relu") or layer_name.startswith("expanded_conv"):
        return 0
    if layer_name in ("Conv_1", "Conv_1_bn", "out_relu"):
        return LAST_BLOCK + 1
    return None


def block_output(model, block: int) -> str:
    """Name of the layer whose output is the output of backbone block `block` (0 = the stem)."""
    if block == 0:
        return "expanded_conv_project_BN"
    names = {layer.name for layer in model.layers}
    residual = f"block_{block}_add"
    return residual if residual in names else f"block_{block}_project_BN"


def set_trainable_blocks(model, first_block: int | None) -> None:
    """Freeze the backbone below `first_block` and unfreeze it from there (`None`: freeze all).

    The head is always trainable. Batch-normalisation layers of the backbone stay frozen (inference
    mode), the usual choice when fine-tuning on a small dataset.
    """
    import keras

    for layer in model.layers:
        block = block_of(layer.name)
        if block is None:
            layer.trainable = True
            continue
        unfrozen = first_block is not None and block >= first_block
        layer.trainable = unfrozen and not isinstance(layer, keras.layers.BatchNormalization)
