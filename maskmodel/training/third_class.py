"""A third class, `mask_incorrect`, added to a two-class classifier while keeping its two classes.

The three-class model is a two-class model plus a gate: one logistic unit gives q, the probability that a
mask is worn below the nose or on the chin, and the outputs are `[(1 - q) p_with, (1 - q) p_without, q]`:
between with and without, the two-class head decides. The gate reads either
- its own branch (`gate="branch"`, the default): a trainable copy of the base's blocks 12-13 and a 1x1
  convolution, fed by the base's block 11; the base is left as it is, so its with/without decision is kept
  exactly, for about 9 % more multiply-adds a face; or
- the base's pooled features (`gate="shared"`), the top blocks fine-tuned with it while the two-class head is
  distilled from the base's own probabilities on the same crops (`distil_weight`); no extra cost, but the
  with/without decision drifts a little.

Training (`fit_student`), on the faces of `gate_data` with the backbone's lower blocks frozen and their
outputs cached for `copies` augmented passes: the gate alone first (`gate_epochs`), then with its branch (or
the top) trainable (`epochs`). Then, on the calibration faces (the photo sets' test split, neither trained on
nor reported), the two-class head gets a temperature and the gate's logit a scale and an offset (Platt
scaling), folded into their weights.

    python -m maskmodel.training.third_class ../shared/datasets/covid19-facemask ../shared/datasets/real-facemask \\
        --photos ../shared/datasets/ilc-2021 --out runs/v5-gate
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from maskmodel.classify.crops import CropPolicy
from maskmodel.io.imageio import encode_image
from maskmodel.evaluation.metrics import classification_report, fit_temperature
from maskmodel.runtime.files import new_file, write_file_atomic
from maskmodel.training.augment import AugmentConfig, augment, runtime_crop
from maskmodel.training.data import CropSet
from maskmodel.training.gate_data import (CLASSES, INCORRECT, GateConfig, GateData, gate_data, outputs_of,
                                          sample_sheet)
from maskmodel.training.train import feature_passes
from maskmodel.zoo.local_models import CONTRACT_NAME

GATE_RUN = "third-class gate"  # run.json's `kind`


def gated_model(base, coefficients: np.ndarray, bias: float, branch=None):
    """The three-class Keras model: the base's two probabilities times (1 - q), then q, where q is the
    sigmoid of `features . coefficients + bias` on the gate's features (`gate_features`). Standard layers
    only (a softmax over (0, logit) is the sigmoid), so the file loads without maskmodel and exports to ONNX
    as the base does."""
    import keras

    features = gate_features(base, branch)
    gate = keras.layers.Dense(2, activation="softmax", name="incorrect_gate")
    keep_and_q = gate(features)
    gate.set_weights([np.stack([np.zeros_like(coefficients), coefficients], axis=1).astype(np.float32),
                      np.array([0.0, bias], np.float32)])
    spread = keras.layers.Dense(2, use_bias=False, name="keep_share")
    kept = spread(keep_and_q)  # (1 - q, 1 - q)
    spread.set_weights([np.array([[1, 1], [0, 0]], np.float32)])
    pick = keras.layers.Dense(1, use_bias=False, name="incorrect_share")
    incorrect = pick(keep_and_q)  # q
    pick.set_weights([np.array([[0], [1]], np.float32)])
    two = keras.layers.Multiply(name="two_class_kept")([base.output, kept])
    outputs = keras.layers.Concatenate(name="three_classes")([two, incorrect])
    model = keras.Model(base.input, outputs, name=f"{base.name}_gated")
    for layer in model.layers:
        layer.trainable = False
    return model


def gate_branch(base, config: GateConfig):
    """The gate's own features (`config.gate == "branch"`): a trainable copy of the base's blocks
    `first_trainable_block` to `branch_last_block` (starting as the base's weights), a 1x1 convolution to
    `branch_width` channels, global pooling. It reads the output of block `first_trainable_block - 1`."""
    import keras

    from maskmodel.training.builder import block_output

    source = keras.Model(base.get_layer(block_output(base, config.first_trainable_block - 1)).output,
                         base.get_layer(block_output(base, config.branch_last_block)).output)
    copy = keras.models.clone_model(source, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "name": f"gate_{layer.name}"}))
    copy.set_weights(source.get_weights())
    x = keras.layers.Conv2D(config.branch_width, 1, name="gate_expand")(copy.output)
    x = keras.layers.ReLU(6.0, name="gate_expand_relu")(x)
    return keras.Model(copy.input, keras.layers.GlobalAveragePooling2D(name="gate_pool")(x), name="incorrect_branch")


def gate_features(model, branch=None):
    """The tensor the gate reads in `model`: its pooled features (the input of its last dense layer), or
    `branch` applied to the output of the block the branch starts after."""
    if branch is None:
        return model.layers[-1].input
    start = next(layer for layer in branch.layers if layer.name.startswith("gate_")).name.removeprefix("gate_")
    return branch(model.get_layer(start).input)


def training_model(student, first_block: int, branch=None):
    """The model trained on cached backbone outputs: from the output of block `first_block - 1` to the
    student's two probabilities and the gate's logit (a dense unit on `gate_features`), side by side."""
    import keras

    from maskmodel.training.builder import block_output

    split = student.get_layer(block_output(student, first_block - 1)).output
    logit = keras.layers.Dense(1, name="incorrect_logit")(gate_features(student, branch))
    return keras.Model(split, keras.layers.Concatenate(name="two_and_logit")([student.output, logit]))


def distil_and_gate_loss(distil_weight: float):
    """The loss: `distil_weight` times the cross-entropy of the two probabilities against the base's
    (columns 0-1 of `y_true`), plus the gate's binary cross-entropy against column 2, weighted by column 3."""
    from keras import ops

    def loss(y_true, y_pred):
        distil = -ops.sum(y_true[:, :2] * ops.log(ops.clip(y_pred[:, :2], 1e-7, 1.0)), axis=-1)
        gate = ops.binary_crossentropy(y_true[:, 2:3], y_pred[:, 2:3], from_logits=True)[:, 0]
        return distil_weight * distil + y_true[:, 3] * gate

    return loss


def fit_student(base, prepared: GateData, config: GateConfig, rng: np.random.Generator, log=print):
    """A copy of `base` fine-tuned with the gate (`config.gate == "shared"`) or left as it is (`"branch"`),
    the gate's branch (or None), and the gate's weights and bias on its features (see the module's
    docstring)."""
    import keras

    from maskmodel.training.builder import block_output, set_trainable_blocks

    student = keras.models.clone_model(base)
    student.set_weights(base.get_weights())
    size, policy = base.input_shape[1], CropPolicy(margin=0.2, square=True)
    split = block_output(base, config.first_trainable_block - 1)
    trunk = keras.Model(base.input, base.get_layer(split).output)
    teacher = keras.Model(base.get_layer(split).output, base.output)
    pool = prepared.crops[np.array([kind == "real" for kind in prepared.kinds])]
    x = feature_passes(prepared.crops, config.copies, outputs_of(trunk),
                       lambda c: augment(c, policy, size, rng, AugmentConfig(), pool))
    incorrect = np.tile((prepared.labels == CLASSES.index(INCORRECT)).astype(np.float32), config.copies)
    balance = np.where(incorrect == 1, len(incorrect) / (2 * max(incorrect.sum(), 1)),
                       len(incorrect) / (2 * max((1 - incorrect).sum(), 1)))
    y = np.column_stack([teacher.predict(x, batch_size=256, verbose=0), incorrect,
                         balance * np.tile(prepared.weights, config.copies)]).astype(np.float32)
    branch = gate_branch(student, config) if config.gate == "branch" else None
    model = training_model(student, config.first_trainable_block, branch)
    for phase, (first_block, rate, epochs) in enumerate(((None, 1e-3, config.gate_epochs),
                                                          (config.first_trainable_block, 1e-4, config.epochs)), 1):
        if not epochs:
            continue
        top_with_gate = branch is None and first_block is not None
        set_trainable_blocks(student, first_block if top_with_gate else None)
        if not top_with_gate:  # the gate alone, or beside a base left as it is
            for layer in student.layers:
                layer.trainable = False
        for layer in branch.layers if branch is not None else []:
            layer.trainable = first_block is not None and not isinstance(layer, keras.layers.BatchNormalization)
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=distil_and_gate_loss(config.distil_weight))
        history = model.fit(x, y, batch_size=64, epochs=epochs, shuffle=True, verbose=0)
        log(f"phase {phase}: loss by epoch " + ", ".join(f"{value:.4f}" for value in history.history["loss"]))
    weights, bias = model.get_layer("incorrect_logit").get_weights()
    return student, branch, weights[:, 0], float(bias[0])


def platt(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Scale and offset of the logit that make the gate's probability calibrated on these faces."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, max_iter=1000).fit(logits.reshape(-1, 1), targets)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def train_gate(data: list[Path], photos: list[Path], out_dir: Path, config: GateConfig, log=print) -> dict:
    """Train and calibrate the gate on `gate_data`, and write the run folder: model.keras, model.onnx,
    model.json, metrics.json, run.json and synthetic.png (a sample sheet of the synthetic faces)."""
    import keras

    from maskmodel.loading import load
    from maskmodel.training.export import export_onnx

    started = time.time()
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    prepared = gate_data(data, photos, config, log)
    prepared_at = time.time()
    base = load(config.base, format="keras")
    size, policy = base.input_shape[1], CropPolicy(margin=0.2, square=True)
    student, branch, coefficients, bias = fit_student(base, prepared, config, rng, log)
    trained_at = time.time()
    calibration = prepared.calibration

    def runtime_crops(crop_set: CropSet) -> np.ndarray:
        return np.stack([runtime_crop(c, policy, size) for c in crop_set.crops]).astype(np.float32)

    crops = runtime_crops(calibration)
    two_class = calibration.labels != CLASSES.index(INCORRECT)
    temperature = fit_temperature(calibration.labels[two_class],
                                  student.predict(crops[two_class], batch_size=64, verbose=0))
    layer = student.get_layer("predictions")  # the temperature folded into the two-class head
    kernel, head_bias = layer.get_weights()
    layer.set_weights([kernel / temperature, head_bias / temperature])
    features = keras.Model(student.input, gate_features(student, branch))
    y_calibration = (~two_class).astype(int)
    scale, offset = platt(features.predict(crops, batch_size=64, verbose=0) @ coefficients + bias, y_calibration)
    model = gated_model(student, coefficients * scale, bias * scale + offset, branch)

    def report(labels: np.ndarray, crops: np.ndarray) -> dict:
        return classification_report(labels, model.predict(crops, batch_size=64, verbose=0), CLASSES)

    metrics = {"classes": CLASSES, "crop_policy": policy.to_dict(),
               "calibration": {"fitted_on": "test photo faces", "count": int(len(y_calibration)),
                               "temperature": round(temperature, 4), "scale": scale, "offset": offset,
                               "report": report(calibration.labels, crops)},
               "splits": {"test": report(prepared.test.labels, runtime_crops(prepared.test))} if prepared.test else {},
               "counts": prepared.counts()}
    out_dir.mkdir(parents=True, exist_ok=True)
    with new_file(out_dir / "model.keras") as temp:
        model.save(temp)
    with new_file(out_dir / "model.onnx") as temp:
        export_onnx(model, temp)
    synthetic = [i for i, kind in enumerate(prepared.kinds) if kind.startswith("synthetic")]
    sheet = sample_sheet(prepared.crops[synthetic], [prepared.kinds[i] for i in synthetic], rng)
    write_file_atomic(out_dir / "synthetic.png", encode_image(cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), ".png"))
    _write_json(out_dir / "metrics.json", metrics)
    _write_json(out_dir / "run.json", {"kind": GATE_RUN, "config": asdict(config), "out": str(out_dir),
                                       "data": [str(p) for p in data], "photos": [str(p) for p in photos],
                                       "seconds": {"prepare_data": round(prepared_at - started, 1),
                                                   "train": round(trained_at - prepared_at, 1),
                                                   "total": round(time.time() - started, 1)}})
    _write_json(out_dir / CONTRACT_NAME, {"task": "classification", "input": {
        "size": size, "colour": "RGB", "range": [0, 255], "crop": policy.to_dict()}, "classes": CLASSES,
        "output": "softmax probabilities in the order of classes",
        "architecture": {"backbone": "MobileNetV2", "base": config.base, "head": "the base's, and a gate"}})
    return metrics


def _write_json(path: Path, data: dict) -> None:
    write_file_atomic(path, json.dumps(data, indent=2).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="*", type=Path, help="Folder-per-class datasets (with_mask/, without_mask/).")
    parser.add_argument("--photos", action="append", type=Path, default=[], required=True,
                        help="VOC photo sets with mask_incorrect faces (repeatable); their test split calibrates.")
    parser.add_argument("--out", type=Path, required=True)
    for field, default in asdict(GateConfig()).items():
        if field not in GateConfig.not_options:
            kind = type(default) if default is not None else str
            parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=default)
    args = parser.parse_args()
    config = GateConfig(**{f: getattr(args, f) for f in asdict(GateConfig()) if f not in GateConfig.not_options})
    if config.miner in ("", "none"):
        config.miner = None
    metrics = train_gate(args.data, args.photos, args.out, config,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(metrics["calibration"]["report"]["per_class"], indent=1))


if __name__ == "__main__":
    main()
