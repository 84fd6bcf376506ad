"""The model zoo: published, versioned models by name, and verified local files for them.

The registry API in one place (as torchvision's `get_model` / `get_weight` / `list_models`):
`list_models`, `model_info` (a typed `ModelVersion`), `model_versions` and `weights_path` (a verified
local file). The records come from `weights/manifest.json` (`maskmodel.zoo.registry`), the files are
found, downloaded and checked by `maskmodel.zoo.downloads`, and models you trained are read by
`maskmodel.zoo.local_models`. Turning a record into the object that runs it is `maskmodel.load`
(`maskmodel.loading`), one layer up: the zoo builds no networks.
"""

from maskmodel.zoo.downloads import (ChecksumError, WeightsUnavailableError, cache_dir, download_file, install_from,
                                     sha256_of, weights_path)
from maskmodel.zoo.registry import (DEFAULT_CLASSIFIER, DEFAULT_FACE_DETECTOR, SEMVER, ModelNotFoundError, ModelVersion,
                                    WeightsFile, detector_aliases, is_default_model, list_models, manifest, model_info,
                                    model_versions, package_weights_dir, weights_file)

__all__ = [
    "DEFAULT_CLASSIFIER", "DEFAULT_FACE_DETECTOR", "SEMVER", "ChecksumError", "ModelNotFoundError", "ModelVersion",
    "WeightsFile", "WeightsUnavailableError", "cache_dir", "detector_aliases", "download_file", "install_from",
    "is_default_model", "list_models",
    "manifest", "model_info", "model_versions", "package_weights_dir", "sha256_of", "weights_file",
    "weights_path",
]
