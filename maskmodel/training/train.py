"""Two-phase fine-tuning of the mask classifier on 2 CPU cores.

The backbone is split at a block boundary into a frozen *trunk* and a trainable *top*. The trunk runs
once per (augmented) crop and its output is cached; both phases then train on the cache:

- phase 1: the head only (the top's backbone blocks frozen), Adam at `head_lr`;
- phase 2: the top's backbone blocks unfrozen too (batch norm kept frozen), Adam at `finetune_lr`.

Early stopping on validation loss keeps the best weights of each phase. The run directory receives
`model.keras`, `model.onnx`, `model.json` (the input contract, as in a manifest entry: the run
directory is a model `--model` and `maskmodel.load` accept), `metrics.json`, `curves.png`,
`confusion.png`, `dataset_report.json` and `run.json` (the settings, the split sizes, the timings).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from maskmodel.classify.classifier import InputContract
from maskmodel.classify.crops import CropPolicy
from maskmodel.detect.faces import FaceDetector
from maskmodel.errors import UsageError
from maskmodel.zoo.local_models import CONTRACT_NAME
from maskmodel.evaluation.metrics import (classification_report, expected_calibration_error, fit_temperature,
                                          with_temperature)
from maskmodel.training.augment import AugmentConfig, augment, runtime_crop
from maskmodel.training.data import SPLITS, CropSet, build_crop_sets, load_dataset
from maskmodel.training.photos import build_photo_crop_sets, face_counts, split_photos
from maskmodel.runtime.files import new_file, write_file_atomic
from maskmodel.training.rundir import check_outside_data
from maskmodel.zoo import cache_dir as model_cache


MIN_MEASURED = 10  # images: a split with fewer, or without some class, is reported as too small to measure


class TrainingDataError(ValueError):
    """The dataset cannot train a classifier (raised before any training starts)."""


@dataclass
class TrainConfig:
    """Settings of one training run (all recorded in `run.json`)."""

    alpha: float = 1.0
    input_size: int = 224
    weights: str | None = "imagenet"
    crop_margin: float = 0.2
    first_trainable_block: int = 12
    augmented_copies: int = 8
    head_epochs: int = 20
    finetune_epochs: int = 12
    head_lr: float = 1e-3
    finetune_lr: float = 1e-4
    batch_size: int = 64
    patience: int = 3
    dropout: float = 0.2
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    exclude: list[str] = field(default_factory=list)
    calibrate: bool = True
    ignore_labels: list[str] = field(default_factory=list)
    images_per_class: int | None = None  # at most this many images per class and split (a quick try)

    @property
    def crop_policy(self) -> CropPolicy:
        return CropPolicy(margin=self.crop_margin, square=True)

    def __post_init__(self) -> None:
        if self.head_epochs < 1 or self.finetune_epochs < 1:
            raise UsageError("Expected at least 1 epoch in each phase. Received: head_epochs="
                             f"{self.head_epochs}, finetune_epochs={self.finetune_epochs}")


def check_trainable(counts: dict[str, Counter], classes: list[str]) -> None:
    """Raise `TrainingDataError` unless there are two classes, each with training and validation images.

    Args:
        counts: images (or photo faces) per split and class.
        classes: the class names.
    """
    if len(classes) < 2:
        raise TrainingDataError(f"Expected at least 2 class folders or photo labels. Received: classes={classes}")
    for split in ("train", "val"):
        split_counts = {name: int(counts.get(split, Counter())[name]) for name in classes}
        empty = [name for name, count in split_counts.items() if count == 0]
        if empty:
            raise TrainingDataError(
                f"Expected images of every class in the {split} split. "
                f"Received: no {split} images for {empty} (counts {split_counts})"
            )


def merge_crop_sets(*parts: dict[str, CropSet]) -> dict[str, CropSet]:
    """Concatenate crop sets split by split."""
    merged = {}
    for split in SPLITS:
        sets = [part[split] for part in parts if split in part]
        if sets:
            merged[split] = CropSet(np.concatenate([s.crops for s in sets]), np.concatenate([s.labels for s in sets]),
                                    [p for s in sets for p in s.paths])
    return merged


def train(
    data: list[Path],
    out_dir: Path,
    detector: FaceDetector,
    config: TrainConfig | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    photos: list[Path] = (),
    photo_detector: FaceDetector | None = None,
) -> dict:
    """Fine-tune MobileNetV2 on folder-per-class `data` and annotated `photos`; write a run directory.

    Classes are the class folders (sorted), then photo labels not among them (sorted), for example
    `mask_incorrect` (see `annotations.CANONICAL_LABELS`), except the photo labels `config.ignore_labels`
    names, whose faces are left out.

    Args:
        data: dataset roots (`ROOT/<class>/*` or `ROOT/{train,val,test}/<class>/*`).
        out_dir: run directory to create.
        detector: face detector used to cut detector-aligned training crops of one-face images.
        config: training settings. Defaults to `TrainConfig()`.
        cache_dir: where face crops are cached (in a `crops-<settings>` folder). Defaults to the model
            cache, `$MASKMODEL_HOME` or `~/.cache/maskmodel`.
        progress: show progress bars (on a terminal only: a log gets no carriage-return bars) and per-epoch lines.
        photos: VOC photo sets (`images/`, `annotations/`), split by `photos.split_photos`.
        photo_detector: the runtime's face detector, whose boxes the photo faces take (see
            `photos.aligned_boxes`); required with `photos`.

    Returns:
        The metrics written to `metrics.json`.
    """
    import keras

    from maskmodel.training.builder import block_output, build_model, set_trainable_blocks
    from maskmodel.training.export import export_onnx
    from maskmodel.training.plots import plot_confusion, plot_curves

    started = time.time()
    config = config or TrainConfig()
    keras.utils.set_random_seed(config.seed)
    out_dir = Path(out_dir)
    check_outside_data(out_dir, [*data, *photos])
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else model_cache()

    samples, report = load_dataset(
        [Path(p) for p in data], set(config.exclude), config.split_fractions, config.seed
    )
    if config.images_per_class:
        samples = _first_per_class(samples, config.images_per_class)
    photo_sets = [split_photos(Path(p), config.split_fractions, config.seed, frozenset(config.exclude))
                  for p in photos]
    counts = {split: Counter(s.label for s in samples if s.split == split) for split in SPLITS}
    for photo_set in photo_sets:
        for split, faces in face_counts(photo_set).items():
            counts[split].update(faces)
    for split_counts in counts.values():
        for label in config.ignore_labels:
            split_counts.pop(label, None)
    photo_labels = sorted(set().union(*(c.keys() for c in counts.values())) - set(report.classes))
    classes = report.classes + photo_labels
    check_trainable(counts, classes)
    if photos and photo_detector is None:
        raise ValueError("Expected a photo_detector with photos. Received: photo_detector=None")
    crop_sets = build_crop_sets(samples, classes, detector, cache_dir, report, progress)
    photo_crops, photo_summaries = [], {}
    for root, photo_set in zip(photos, photo_sets):
        sets, photo_summaries[str(root)] = build_photo_crop_sets(photo_set, classes, photo_detector, cache_dir,
                                                                 progress)
        photo_crops.append(sets)
    crop_sets = merge_crop_sets(crop_sets, *photo_crops)
    photo_paths = {path for sets in photo_crops for crop_set in sets.values() for path in crop_set.paths}
    _write_json(out_dir / "dataset_report.json", {**report.to_dict(), "classes": classes, "photos": photo_summaries})
    prepared = time.time()

    model = build_model(config.alpha, config.input_size, config.weights, len(classes), config.dropout)
    split_layer = block_output(model, config.first_trainable_block - 1)
    trunk = keras.Model(model.input, model.get_layer(split_layer).output)
    top = keras.Model(model.get_layer(split_layer).output, model.output)
    rng = np.random.default_rng(config.seed)
    policy, size = config.crop_policy, config.input_size

    def features(crops: list[np.ndarray]) -> np.ndarray:
        return trunk.predict(np.stack(crops).astype(np.float32), batch_size=64, verbose=0).astype(np.float16)

    from tqdm import tqdm

    train_set, val_set = crop_sets["train"], crop_sets["val"]
    low_res_only = AugmentConfig(scale=(1.0, 1.0), shift=0.0, rotation_degrees=0.0, flip=0.0, colour=0.0,
                                 low_resolution=1.0, blur=0.0, jpeg=0.0, grayscale=0.0, occluder=0.0)
    with tqdm(total=config.augmented_copies * len(train_set.crops) + 2 * len(val_set.crops), desc="features",
              unit="crop", disable=None if progress else True) as bar:  # one bar for the three passes
        x_train = feature_passes(train_set.crops, config.augmented_copies, features,
                                 lambda c: augment(c, policy, size, rng, AugmentConfig(), train_set.crops), bar)
        x_val_clean = feature_passes(val_set.crops, 1, features, lambda c: runtime_crop(c, policy, size), bar)
        x_val_low = feature_passes(val_set.crops, 1, features,
                                   lambda c: augment(c, policy, size, rng, low_res_only), bar)
    y_train = np.tile(train_set.labels, config.augmented_copies)
    x_val, y_val = np.concatenate([x_val_clean, x_val_low]), np.tile(val_set.labels, 2)
    cached = time.time()

    counts = np.bincount(y_train, minlength=len(classes))
    class_weight = {i: float(len(y_train) / (len(classes) * max(c, 1))) for i, c in enumerate(counts)}
    history: dict[str, list[float]] = {}
    for number, (phase, first_block, lr, epochs) in enumerate((
        ("head", None, config.head_lr, config.head_epochs),
        ("finetune", config.first_trainable_block, config.finetune_lr, config.finetune_epochs),
    ), 1):
        set_trainable_blocks(model, first_block)
        top.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
        stop = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
        name = f"phase {number}/2 ({phase})"
        line = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs, name=name, epochs=epochs: print(
            _epoch_line(name, epochs, {**logs, "epoch": epoch}), file=sys.stderr, flush=True))
        callbacks = [stop, line] if progress else [stop]
        fit = top.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                      batch_size=config.batch_size, class_weight=class_weight, callbacks=callbacks, verbose=0)
        for key, values in fit.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        history.setdefault("phase", []).extend([phase] * len(fit.history["loss"]))
    trained = time.time()

    def predict(crop_set: CropSet) -> np.ndarray:
        return np.concatenate([  # in chunks: a whole split as float32 crops can exhaust memory
            model.predict(np.stack([runtime_crop(c, policy, size) for c in chunk]).astype(np.float32),
                          batch_size=64, verbose=0)
            for chunk in np.array_split(crop_set.crops, -(-len(crop_set.crops) // 256))])

    metrics = {"classes": classes, "crop_policy": policy.to_dict(), "splits": {}, "photo_splits": {},
               "counts": {}, "warnings": []}
    if config.calibrate:
        metrics["calibration"] = calibrate(model, val_set, predict(val_set), photo_paths)
    for split in SPLITS:
        if split in crop_sets:
            probabilities = predict(crop_sets[split])
            metrics["splits"][split] = classification_report(crop_sets[split].labels, probabilities, classes)
            metrics["counts"][split] = {name: int(n) for name, n in
                                        zip(classes, np.bincount(crop_sets[split].labels, minlength=len(classes)))}
            warning = split_warning(split, metrics["counts"][split])
            if warning:
                metrics["splits"][split]["warning"] = warning
                metrics["warnings"].append(warning)
            from_photos = np.array([p in photo_paths for p in crop_sets[split].paths])
            if from_photos.any():
                metrics["photo_splits"][split] = classification_report(
                    crop_sets[split].labels[from_photos], probabilities[from_photos], classes)
    with new_file(out_dir / "model.keras") as temp:
        model.save(temp)
    with new_file(out_dir / "model.onnx") as temp:
        export_onnx(model, temp)
    with new_file(out_dir / "curves.png") as temp:
        plot_curves(history, temp)
    if "test" in metrics["splits"]:
        with new_file(out_dir / "confusion.png") as temp:
            plot_confusion(np.array(metrics["splits"]["test"]["confusion_matrix"]), classes, temp)
    _write_json(out_dir / "metrics.json", metrics)
    run = {
        "config": asdict(config),
        "data": [str(p) for p in data],
        "photos": [str(p) for p in photos],
        "face_detector": detector.name,
        "classes": classes,
        "training_samples": int(len(y_train)),
        "history": history,
        "seconds": {
            "prepare_data": round(prepared - started, 1),
            "cache_features": round(cached - prepared, 1),
            "train": round(trained - cached, 1),
            "total": round(time.time() - started, 1),
        },
    }
    _write_json(out_dir / "run.json", run)
    contract = InputContract(config.input_size, tuple(classes), policy)
    _write_json(out_dir / CONTRACT_NAME, {
        "task": "classification", **contract.to_manifest(),
        "output": "softmax probabilities in the order of classes",
        "architecture": {"backbone": "MobileNetV2", "alpha": config.alpha},
    })
    return metrics


def _write_json(path: Path, data: dict) -> None:
    """Write a file of the run folder as maskmodel writes every file (`new_file`): a link planted under
    its name (to a training photo, or outside the folder) is replaced, never written through."""
    write_file_atomic(path, json.dumps(data, indent=2).encode())


def calibrate(model, val_set: CropSet, probabilities: np.ndarray, photo_paths: set[str]) -> dict:
    """Temperature scaling, folded into the model: fit the temperature on the validation faces of the
    annotated photos (real photos, like the runtime's; the whole validation split when there are none) and
    divide the last layer's weights and bias by it, so that every export carries calibrated probabilities.
    Returns the temperature and the expected calibration error before and after, on those faces."""
    from_photos = np.array([p in photo_paths for p in val_set.paths])
    chosen = from_photos if from_photos.any() else np.ones(len(val_set.labels), dtype=bool)
    labels, before = val_set.labels[chosen], probabilities[chosen]
    temperature = fit_temperature(labels, before)
    layer = model.get_layer("predictions")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / temperature, bias / temperature])
    return {"temperature": round(temperature, 4), "fitted_on": "val photo faces" if from_photos.any() else "val",
            "count": int(chosen.sum()), "ece_before": expected_calibration_error(labels, before),
            "ece_after": expected_calibration_error(labels, with_temperature(before, temperature))}


def split_warning(split: str, counts: dict[str, int]) -> str | None:
    """Why the metrics of a split with these images per class say little (under `MIN_MEASURED` images,
    or a class missing), or None."""
    problems = [f"{sum(counts.values())} images, under {MIN_MEASURED}"] * (sum(counts.values()) < MIN_MEASURED)
    problems += [f"no {name} image" for name, count in counts.items() if count == 0]
    if not problems:
        return None
    listed = ", ".join(f"{name} {count}" for name, count in counts.items())
    return f"the {split} split is too small to measure ({'; '.join(problems)}: {listed}): its accuracy says little"


def _first_per_class(samples: list, limit: int) -> list:
    """At most `limit` samples of each class in each split, in their order."""
    seen: Counter = Counter()
    kept = []
    for sample in samples:
        seen[sample.split, sample.label] += 1
        if seen[sample.split, sample.label] <= limit:
            kept.append(sample)
    return kept


def feature_passes(crops: np.ndarray, copies: int, features, make_crop, bar=None) -> np.ndarray:
    """`features` (of a list of crops) over `copies` passes through `crops`, each crop made by `make_crop` (an
    augmentation, or the runtime crop), in chunks of 256, in pass order (`bar`, if given, counts crops)."""
    chunks = []
    for _ in range(copies):
        for start in range(0, len(crops), 256):
            batch = [make_crop(c) for c in crops[start : start + 256]]
            chunks.append(features(batch))
            if bar is not None:
                bar.update(len(batch))
    return np.concatenate(chunks)


def _epoch_line(phase: str, epochs: int, logs: dict) -> str:
    """One line per epoch: phase, epoch, loss, accuracy and their validation values."""
    values = "  ".join(f"{key} {logs[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                       if key in logs)
    return f"{phase} epoch {logs['epoch'] + 1}/{epochs}  {values}"
