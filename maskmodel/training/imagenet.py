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
from maskmodel.runtime.files import new_file
from maskmodel.zoo import sha256_of

BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
FILE_PATTERN = re.compile(r"^mobilenet_v2_weights_tf_dim_ordering_tf_kernels_[0-9.]+_[0-9]+_no_top\.h5$")


class ImagenetWeightsMissing(UsageError):
    """The ImageNet weights are neither in Keras' folder nor downloadable."""


class ImagenetWeightsDamaged(UsageError):
    """An ImageNet weights file whose sha256 is not the one Keras publishes (or not known to maskmodel)."""


IMAGENET_INPUT = 224  # the ImageNet file every input size starts from (no-top weights fit any size)
# sha256 of the files Keras publishes at BASE_URL (measured on copies of the downloads); files of other
# widths are not installed by maskmodel, which cannot check them (Keras downloads them when online)
SHA256 = {
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5":
        "738eef517c981311e64cca03e00aca95efa96f3e3e406724c4c506ffc3281c87",
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5":
        "102a691e175c0747a9da59affe8b7bce915f9a814111257bf65163730a50e1c6",
}


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
        if name in SHA256 and sha256_of(keras_models_dir() / name) != SHA256[name]:
            raise ImagenetWeightsDamaged(
                f"{keras_models_dir() / name} is not Keras' ImageNet file (its sha256 differs): remove it (Keras "
                "downloads it again when online) or install a good copy with `maskmodel models install --from DIR`")
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
    """Copy the Keras ImageNet MobileNetV2 files found in `directory` into Keras' folder, each checked by
    its sha256 (`SHA256`) before it takes its name; a file that does not match, or whose sha256 maskmodel
    does not know, raises `ImagenetWeightsDamaged` and the installed file stays as it was."""
    installed = []
    for source in sorted(Path(directory).iterdir()):
        if FILE_PATTERN.match(source.name) and source.is_file():
            expected = SHA256.get(source.name)
            if expected is None:
                raise ImagenetWeightsDamaged(
                    f"{source}: maskmodel knows no sha256 of this file, so it does not install it (it checks the "
                    f"widths {', '.join(sorted(name.split('_')[-4] for name in SHA256))}); copy it into "
                    f"{keras_models_dir()} yourself if you trust it")
            target = keras_models_dir() / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with new_file(target) as temp:
                shutil.copyfile(source, temp)
                if sha256_of(temp) != expected:
                    raise ImagenetWeightsDamaged(f"{source} is not Keras' ImageNet file (expected sha256 {expected}): "
                                                 "damaged or of another kind; nothing was installed in its place")
            installed.append(target)
    return installed

