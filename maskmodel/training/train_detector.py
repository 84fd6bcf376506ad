"""Fine-tuning CenterFace on face boxes (`maskmodel train-detector`), on 2 CPU cores.

The model starts from the published CenterFace ported to Keras (`detector_model.port_centerface`) and is
trained with CenterNet's loss (`detector_targets`) on augmented crops (`detector_data`): batch norm frozen
(its statistics are the published network's), the landmark head frozen (face-box sets have no landmarks).
Adam with a short warm-up and a cosine decay over `steps`.

A run directory holds `model.onnx` (the published file's contract: `CenterFaceDetector` runs it), `model.keras`,
`model.json` (the detector's card: input contract, sha256 of `model.onnx`, data, split, measured figures),
`metrics.json`, `unlabelled.json` (the original detector's unlabelled faces, computed once) and `train.log`.
`.checkpoint/` holds the weights and optimizer state every `checkpoint_every` steps, so a killed run goes
on with `resume=True`; it is removed when the run ends.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from maskmodel.errors import UsageError
from maskmodel.evaluation.annotations import AnnotatedFace, AnnotatedImage
from maskmodel.runtime.files import new_file, read_regular_file, write_file_atomic
from maskmodel.training.detector_data import augmented_crop, training_photos, unlabelled_faces
from maskmodel.training.detector_model import (STRIDE, build_centerface, copy_neck_and_heads, export_detector_onnx,
                                               fit_neck_inputs, port_centerface, with_neck_taps)
from maskmodel.training.detector_targets import centernet_loss, distillation_loss, feature_loss, make_targets
from maskmodel.zoo.local_detectors import CARD_NAME

CHECKPOINT = ".checkpoint"
UNLABELLED = ("ignore", "teacher")
LOWEST_THRESHOLD = 0.1  # the lowest score threshold a fine-tuned detector may be given
STUDENT_ALPHAS = (0.35, 0.5, 0.75)  # widths with Keras ImageNet weights below the published 1.0


@dataclass
class DetectorTrainConfig:
    """Settings of one detector fine-tuning run (all recorded in `model.json`)."""

    steps: int = 600
    batch_size: int = 8
    input_size: int = 320
    learning_rate: float = 1e-4
    warmup_steps: int = 30
    unlabelled: str = "ignore"
    student_alpha: float | None = None  # train a narrower CenterFace on the published one's maps (distillation)
    seed: int = 0
    checkpoint_every: int = 50
    data: list[str] = field(default_factory=list)
    val_data: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.student_alpha is not None and self.student_alpha not in STUDENT_ALPHAS:
            raise UsageError(f"Expected student_alpha in {STUDENT_ALPHAS}. Received: student_alpha={self.student_alpha!r}")
        if self.unlabelled not in UNLABELLED:
            raise UsageError(f"Expected unlabelled in {UNLABELLED}. Received: unlabelled={self.unlabelled!r}")
        if self.input_size % 32 or self.input_size < 64:
            raise UsageError(f"Expected an input size that is a multiple of 32, at least 64. Received: {self.input_size}")
        if self.steps < 1 or self.batch_size < 1:
            raise UsageError(f"Expected at least 1 step of at least 1 image. Received: steps={self.steps}, "
                             f"batch_size={self.batch_size}")


def learning_rate(step: int, config: DetectorTrainConfig) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to 0 at `steps`."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))


def _batch(photos, config: DetectorTrainConfig, step: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Step `step`'s batch: `batch_size` augmented crops (NHWC float32) and their targets (`make_targets`)."""
    rng = np.random.default_rng([config.seed, step])
    pixels, targets = [], []
    for index in rng.integers(len(photos), size=config.batch_size):
        crop, boxes, ignore, soft = augmented_crop(photos[index], config.input_size, rng, config.unlabelled)
        pixels.append(crop)
        targets.append(make_targets(boxes, ignore, config.input_size, config.input_size, soft))
    return np.stack(pixels), {key: np.stack([t[key] for t in targets]) for key in targets[0]}


def _write_json(path: Path, record: dict) -> None:
    write_file_atomic(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))


def _read_json(path: Path) -> dict:
    return json.loads(read_regular_file(path, 256 << 20).decode("utf-8"))


def _checkpoint_folder(folder: Path) -> Path:
    """The run's checkpoint folder, made if missing; anything but a real folder there (a planted link) is refused."""
    if os.path.lexists(folder) and not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise UsageError(f"{folder} is not a folder (a link or a file is in the way): remove it")
    folder.mkdir(exist_ok=True)
    return folder


def _save_checkpoint(folder: Path, model, optimizer, step: int, config: DetectorTrainConfig, history: list) -> None:
    folder = _checkpoint_folder(folder)
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    with new_file(folder / "state.npz") as temporary, open(temporary, "wb") as stream:
        np.savez(stream, **arrays)
    _write_json(folder / "state.json", {"step": step, "config": asdict(config), "history": history})


def _load_checkpoint(folder: Path, model, optimizer, config: DetectorTrainConfig) -> tuple[int, list]:
    """The step and loss history a killed run reached (its weights and optimizer state loaded); `0, []` when
    there is none. A checkpoint of other settings is refused."""
    if not (folder / "state.json").is_file():
        return 0, []
    state = _read_json(folder / "state.json")
    if state["config"] != json.loads(json.dumps(asdict(config))):
        raise UsageError(f"{folder} holds a run with other settings: resume it with the same options, or start a "
                         "new run (another --out, or --overwrite)")
    with np.load(io.BytesIO(read_regular_file(folder / "state.npz"))) as arrays:
        model.set_weights([arrays[f"w{i}"] for i in range(len(model.get_weights()))])
        optimizer.build(model.trainable_variables)
        for i, variable in enumerate(optimizer.variables):
            variable.assign(arrays[f"o{i}"])
    return int(state["step"]), state["history"]


def _as_faces(images: list[AnnotatedImage]) -> list[AnnotatedImage]:
    """The images with every annotated box labelled "face" (detection metrics, whatever the classes)."""
    return [AnnotatedImage(i.image_path, tuple(AnnotatedFace(f.box, "face") for f in i.faces)) for i in images]


def detector_predictions(detector, images: list[AnnotatedImage]) -> list[list]:
    """Each image's detections as face records (`box`, `score`, `label` "face") for the detection metrics."""
    from maskmodel.io.imageio import read_image
    from maskmodel.results import Face

    return [[Face(tuple(map(float, box[:4])), float(box[4]), "face", {"face": 1.0})
             for box in detector.detect(read_image(image.image_path))] for image in images]


def face_metrics(images: list[AnnotatedImage], predictions: list[list], threshold: float = 0.0) -> dict:
    """Face AP at IoU 0.3 / 0.5 / 0.5:0.95, precision and recall by face size of the `predictions` with
    score >= `threshold` on `images`."""
    from maskmodel.evaluation.evaluate import box_style, evaluate_detections

    faces = _as_faces(images)
    kept = [[face for face in found if face.score >= threshold] for found in predictions]
    result = evaluate_detections(faces, kept, ("face",))
    style = box_style(faces, kept, ("face",))
    return {"images": result["images"], "faces": result["faces"], "face_ap50": result["face_ap50"],
            "face_ap30": style["face_ap"]["0.3"], "face_ap50_95": style["face_ap"]["0.5:0.95"],
            "precision": result["precision"], "recall": result["recall"], "recall_by_size": result["recall_by_size"],
            "box_offset": style["offset"]}


def matched_threshold(images: list[AnnotatedImage], predictions: list[list], precision: float) -> float | None:
    """The lowest score threshold (0.1 to 0.7, step 0.02) at which `predictions` are at least `precision`
    precise on `images`: a fine-tuned detector's scores are not the original's, so it draws as many wrong
    boxes as the original at the threshold that matches the original's precision. `None` when none does."""
    for threshold in np.round(np.arange(LOWEST_THRESHOLD, 0.71, 0.02), 2):
        if face_metrics(images, predictions, float(threshold))["precision"] >= precision - 1e-9:
            return float(threshold)
    return None


def train_detector(train_images: list[AnnotatedImage], val_images: list[AnnotatedImage], out_dir: Path,
                   teacher_path: Path, config: DetectorTrainConfig, resume: bool = False, progress: bool = True,
                   log=print, calibration_images: list[AnnotatedImage] | None = None) -> dict:
    """Fine-tune the published CenterFace (`teacher_path`) on `train_images`, choose its score threshold on
    `calibration_images` (default: `val_images`; `matched_threshold`), measure it and the original on
    `val_images`, and write the run directory `out_dir` (see the module docstring).

    Returns:
        The metrics written to `metrics.json`.
    """
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from maskmodel.detect.centerface import CenterFaceDetector

    out_dir = Path(out_dir)
    started = time.time()
    lines = read_regular_file(out_dir / "train.log").decode("utf-8").splitlines() \
        if resume and (out_dir / "train.log").is_file() else []

    def note(line: str) -> None:  # to the caller's log and to OUT/train.log
        lines.append(line)
        log(line)
        write_file_atomic(out_dir / "train.log", ("\n".join(lines) + "\n").encode("utf-8"))

    teacher = CenterFaceDetector(teacher_path, first_pass=0)
    unlabelled_file = out_dir / "unlabelled.json"
    if resume and unlabelled_file.is_file():
        unlabelled = _read_json(unlabelled_file)
    else:
        with tqdm(total=len(train_images), desc="unlabelled faces", disable=None if progress else True, leave=False) as bar:
            unlabelled = unlabelled_faces(train_images, teacher, bar.update)
        _write_json(unlabelled_file, unlabelled)
    photos = training_photos(train_images, unlabelled)
    note(f"{len(photos)} training photos, {sum(len(p.boxes) for p in photos)} faces, "
         f"{sum(len(p.ignore) for p in photos)} unlabelled faces of the original detector ({config.unlabelled})")

    student = config.student_alpha is not None
    if student:  # a narrower backbone from ImageNet under the published neck and heads, taught its maps
        published = port_centerface(teacher_path)
        model = build_centerface(config.student_alpha, weights="imagenet", activation="relu6")
        copy_neck_and_heads(published, model)
        if not resume:
            fit_neck_inputs(published, model, [_batch(photos, config, config.steps + i)[0] for i in range(4)])
        taught, teaching = with_neck_taps(model), with_neck_taps(published)
    else:
        model = port_centerface(teacher_path)
    for layer in model.layers:  # batch norm frozen; a fine-tuned model's landmark head stays as published
        if isinstance(layer, keras.layers.BatchNormalization) or (layer.name == "landmarks" and not student):
            layer.trainable = False
    optimizer = keras.optimizers.Adam(config.learning_rate)
    checkpoint = out_dir / CHECKPOINT
    first, history = _load_checkpoint(checkpoint, model, optimizer, config) if resume else (0, [])
    if first:
        note(f"resuming at step {first} of {config.steps}")

    @tf.function(reduce_retracing=True)
    def step_fn(pixels, targets, rate):
        optimizer.learning_rate.assign(rate)
        with tf.GradientTape() as tape:
            if student:  # the labels, the published maps and the features that enter its neck's sums
                maps, taps = teaching(pixels, training=False)
                outputs, student_taps = taught(pixels, training=True)
                losses = centernet_loss(outputs, targets)
                losses.update(distillation_loss(outputs, {f"teacher_{k}": v for k, v in maps.items()}))
                losses.update(feature_loss(student_taps, taps))
                losses["loss"] = losses["loss"] + losses["distill"] + losses["features"]
            else:
                outputs = model(pixels, training=True)
                losses = centernet_loss(outputs, targets)
        gradients = tape.gradient(losses["loss"], model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return losses

    with ThreadPoolExecutor(1) as loader, tqdm(total=config.steps, initial=first, desc="train-detector",
                                               disable=None if progress else True) as bar:
        upcoming = loader.submit(_batch, photos, config, first)
        running = []
        for step in range(first, config.steps):
            pixels, targets = upcoming.result()
            if step + 1 < config.steps:
                upcoming = loader.submit(_batch, photos, config, step + 1)
            losses = step_fn(tf.constant(pixels), {k: tf.constant(v) for k, v in targets.items()},
                             tf.constant(learning_rate(step, config), tf.float32))
            running.append({k: float(v) for k, v in losses.items()})
            bar.update()
            bar.set_postfix(loss=f"{running[-1]['loss']:.3f}")
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                mean = {k: round(float(np.mean([r[k] for r in running])), 4) for k in running[0]}
                history.append({"step": step + 1, **mean})
                running = []
                note(f"step {step + 1}/{config.steps}  " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items()))
                _save_checkpoint(checkpoint, model, optimizer, step + 1, config, history)

    _export(model, out_dir)
    metrics = measure_run(out_dir, teacher_path, config, train_images, val_images, calibration_images,
                          {"history": history, "train_seconds": round(time.time() - started, 1)}, note)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return metrics


def measure_run(out_dir: Path, teacher_path: Path, config: DetectorTrainConfig, train_images: list[AnnotatedImage],
                val_images: list[AnnotatedImage], calibration_images: list[AnnotatedImage] | None, metrics: dict,
                note=print) -> dict:
    """The end of a run whose `model.onnx` is written: its score threshold chosen on `calibration_images`
    (default `val_images`), the fine-tuned and the original detector measured on `val_images`, and
    `metrics.json` and the card written. Returns the metrics."""
    from maskmodel.detect.centerface import CenterFaceDetector

    onnx_path = out_dir / "model.onnx"
    settings = {}
    calibration = calibration_images if calibration_images is not None else val_images
    if calibration:
        note(f"choosing the score threshold on {len(calibration)} photos: the original's precision at its threshold")
        original = detector_predictions(CenterFaceDetector(teacher_path), calibration)
        fine_tuned = detector_predictions(CenterFaceDetector(onnx_path, score_threshold=LOWEST_THRESHOLD), calibration)
        threshold = matched_threshold(calibration, fine_tuned, face_metrics(calibration, original)["precision"])
        if threshold is None:
            note("no threshold from 0.1 to 0.7 makes its boxes as precise as the original's: the default kept")
        else:
            settings["score_threshold"] = metrics["score_threshold"] = threshold
    if val_images:
        note(f"measuring on {len(val_images)} validation photos (the original detector beside it)")
        metrics["val"] = {
            "fine_tuned": face_metrics(val_images, detector_predictions(CenterFaceDetector(onnx_path, **settings), val_images)),
            "original": face_metrics(val_images, detector_predictions(CenterFaceDetector(teacher_path), val_images))}
    _write_json(out_dir / "metrics.json", metrics)
    _write_json(out_dir / CARD_NAME, detector_card(onnx_path, config, train_images, val_images, metrics, settings))
    return metrics


def _export(model, out_dir: Path) -> Path:
    """`model.keras` and `model.onnx` into `out_dir`, each written as a fresh file and renamed (`new_file`)."""
    for name, write in (("model.keras", model.save), ("model.onnx", lambda p: export_detector_onnx(model, p))):
        with new_file(out_dir / name) as temporary:
            write(str(temporary))
    return out_dir / "model.onnx"


def detector_card(onnx_path: Path, config: DetectorTrainConfig, train_images: list[AnnotatedImage],
                  val_images: list[AnnotatedImage], metrics: dict, settings: dict) -> dict:
    """The run's `model.json`: what `--face-detector RUN` checks and runs, and what it was trained on."""
    return {
        "task": "face-detection",
        "detector": "centerface",
        "description": (f"a CenterFace of MobileNetV2 width {config.student_alpha} trained with `maskmodel train-detector "
                        "--student-alpha` on the published CenterFace's maps and the boxes" if config.student_alpha
                        else "CenterFace fine-tuned with `maskmodel train-detector`"),
        "files": {"onnx": {"file": onnx_path.name, "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
                           "size": onnx_path.stat().st_size}},
        "input": {"colour": "RGB", "layout": "NCHW, any height and width that are multiples of 32 (zero-padded "
                  "bottom/right)", "range": [0, 255], "normalisation": "none"},
        "output": f"four stride-{STRIDE} maps, NCHW: heat (sigmoid score), scale (log h, log w: exp(v) * 4), offset "
                  "(y, x), landmarks (the published CenterFace's: kept when fine-tuned, distilled for a student)",
        "outputs": ["heat", "scale", "offset", "landmarks"],
        "base": "centerface@1.0.0 (Star-Clouds/CenterFace, MIT)",
        "data": {"train": config.data, "val": config.val_data, "train_photos": len(train_images),
                 "train_faces": sum(len(i.faces) for i in train_images), "val_photos": len(val_images)},
        "training": asdict(config),
        "box_style": "the training annotations' (boxes learnt from them)",
        "settings": settings,
        "metrics": metrics.get("val", {}),
    }
