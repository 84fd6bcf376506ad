"""The ImageNet MobileNetV2 files Keras starts fine-tuning from: where Keras keeps them, a check before
any training work, and the offline install (`maskmodel models install --from DIR`).

Keras downloads `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_<size>_no_top.h5` into
`$KERAS_HOME/models` (default `~/.keras/models`) on first use; a machine without internet needs the
file copied there first. Nothing here imports Keras.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from pathlib import Path

from maskmodel.errors import UsageError

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
FILE_PATTERN = re.compile(r"^mobilenet_v2_weights_tf_dim_ordering_tf_kernels_[0-9.]+_[0-9]+_no_top\.h5$")


class ImagenetWeightsMissing(UsageError):
    """The ImageNet weights are neither in Keras' folder nor downloadable."""


IMAGENET_INPUT = 224  # the ImageNet file every input size starts from (no-top weights fit any size)


def file_name(alpha: float) -> str:
    """Keras' name of the no-top ImageNet file of this width (224 px)."""
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{IMAGENET_INPUT}_no_top.h5"


def keras_models_dir() -> Path:
    """Where Keras looks for (and downloads) application weights."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "models"


def check_imagenet_weights(alpha: float, timeout: float = 5.0) -> None:
    """Raise `ImagenetWeightsMissing`, with how to provide the file, unless Keras has it or can fetch it."""
    name = file_name(alpha)
    if (keras_models_dir() / name).is_file():
        return
    try:
        with urllib.request.urlopen(urllib.request.Request(BASE_URL + name, method="HEAD"), timeout=timeout):
            return
    except OSError as error:
        reason = getattr(error, "reason", error)
    raise ImagenetWeightsMissing(
        f"the ImageNet weights {name} are not in {keras_models_dir()} (Keras' folder, $KERAS_HOME/models) "
        f"and cannot be downloaded ({reason}): install them from a folder holding them with "
        "`maskmodel models install --from DIR` (in a checkout: --from ../shared/models/keras), or copy the file "
        "there (or start from random weights: --weights none, weights=None)")


def install_from(directory: Path) -> list[Path]:
    """Copy the Keras ImageNet MobileNetV2 files found in `directory` into Keras' folder."""
    installed = []
    for source in sorted(Path(directory).iterdir()):
        if FILE_PATTERN.match(source.name) and source.is_file():
            target = keras_models_dir() / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_name(f".{target.name}.part")
            shutil.copyfile(source, temp)
            os.replace(temp, target)
            installed.append(target)
    return installed
