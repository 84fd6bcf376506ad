"""A third class, `mask_incorrect`, added to a two-class classifier without retraining its two classes.

The three-class model is the two-class model plus a gate: one logistic unit on the two-class model's pooled
features gives q, the probability that a mask is worn below the nose, and the outputs are
`[(1 - q) p_with, (1 - q) p_without, q]`. The two-class decision between with and without is the base
model's, untouched; the only new way to be wrong on a with/without face is a gate that fires.

The gate trains on the base's features of augmented crops (the base is frozen, so features are computed
once per copy):
- real faces of the training split: with/without (0) and ilc-2021's incorrectly worn masks (1);
- synthetic masks (`synthetic_masks`) on real unmasked faces of the training split: below the nose or on
  the chin (1), and over the nose or low on it (0), from templates and from real masks of masked faces, so
  that the gate learns where the mask sits, not what a synthetic mask looks like;
- hard examples: with/without training faces that an earlier three-class model (`--miner`) calls
  `mask_incorrect` or scores it at `HARD_SCORE` or more, repeated `HARD_REPEAT` times.
Its logit is then calibrated (Platt scaling: a scale and an offset) on the faces of a calibration split
that is neither trained on nor reported (ilc-2021's test photos), and folded into the gate's weights.

    python -m maskmodel.training.third_class --shared ../shared --out runs/v5-gate
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from maskmodel.classify.crops import CropPolicy
from maskmodel.evaluation.metrics import classification_report
from maskmodel.runtime.files import new_file, write_file_atomic
from maskmodel.training import synthetic_masks
from maskmodel.training.augment import AugmentConfig, augment, runtime_crop
from maskmodel.training.data import CONTEXT_SIZE, CropSet, build_crop_sets, load_dataset
from maskmodel.training.photos import build_photo_crop_sets, split_photos
from maskmodel.training.train import merge_crop_sets
from maskmodel.zoo import cache_dir as model_cache
from maskmodel.zoo.local_models import CONTRACT_NAME

INCORRECT = "mask_incorrect"
CLASSES = ["with_mask", "without_mask", INCORRECT]
HARD_SCORE = 0.3
HARD_REPEAT = 4


@dataclass
class GateConfig:
    """Settings of one gate run (recorded in `run.json`)."""

    base: str = "mask-mobilenetv2-0.35@3.0.0"
    miner: str | None = "mask-mobilenetv2-0.35@4.0.0"
    synthetic_per_face: int = 1  # synthetic faces of each class made from each unmasked training face
    real_mask_share: float = 0.5  # of synthetic masks, the share cut from real masked faces (else templates)
    copies: int = 4  # augmented copies of each training crop
    regularisation: float = 0.05  # inverse of the logistic regression's C
    synthetic_weight: float = 1.0  # weight of a synthetic face against a real one
    seed: int = 0
    exclude: tuple[str, ...] = ("with_mask239.jpg",)


def landmarks_of_crops(crops: np.ndarray, detector) -> list[np.ndarray | None]:
    """The five landmarks of the face nearest each context crop's centre, or None where there is no face
    or it is not plausible (`synthetic_masks.plausible_landmarks`)."""
    found = []
    for crop in crops:
        boxes, landmarks = detector.detect_with_landmarks(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not len(boxes):
            found.append(None)
            continue
        centres = (boxes[:, :2] + boxes[:, 2:4]) / 2
        best = landmarks[int(np.argmin(np.linalg.norm(centres - CONTEXT_SIZE / 2, axis=1)))]
        found.append(best if synthetic_masks.plausible_landmarks(best, CONTEXT_SIZE) else None)
    return found


def synthesise(faces: np.ndarray, face_landmarks: list, masked: np.ndarray, masked_landmarks: list,
               config: GateConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Synthetic masks on unmasked `faces`: for each face with landmarks, `config.synthetic_per_face` worn
    wrong and as many worn right, each from a template or (`config.real_mask_share`) a real mask of
    `masked`. Returns the crops, their labels (indices into `CLASSES`) and a description of each."""
    donors = [i for i, points in enumerate(masked_landmarks) if points is not None]
    crops, labels, names = [], [], []
    for index, (face, points) in enumerate(zip(faces, face_landmarks)):
        if points is None:
            continue
        for _ in range(config.synthetic_per_face):
            for placement in (rng.choice(["below_nose", "chin"], p=[0.7, 0.3]),
                              rng.choice(["over_nose", "low_on_nose"])):
                use_real = bool(donors) and rng.random() < config.real_mask_share
                try:
                    if use_real:
                        donor = donors[rng.integers(len(donors))]
                        crop = synthetic_masks.real_mask(face, points, masked[donor], masked_landmarks[donor],
                                                         placement, rng)
                    else:
                        crop = synthetic_masks.template_mask(face, points, placement, rng)
                except ValueError:  # anchors that fall outside the crop: no sample
                    continue
                crops.append(crop)
                labels.append(CLASSES.index(synthetic_masks.PLACEMENTS[placement][0]))
                names.append(f"synthetic:{placement}:{'real' if use_real else 'template'}:{index}")
    return np.array(crops, dtype=np.uint8).reshape(-1, CONTEXT_SIZE, CONTEXT_SIZE, 3), np.array(labels), names


def hard_examples(miner, crop_set: CropSet, policy: CropPolicy) -> np.ndarray:
    """Indices of the with/without faces of `crop_set` that `miner` (a three-class Keras model) calls
    `mask_incorrect` or scores it at `HARD_SCORE` or more."""
    size = miner.input_shape[1]
    two_class = np.flatnonzero(crop_set.labels != CLASSES.index(INCORRECT))
    if not len(two_class):
        return two_class
    crops = np.stack([runtime_crop(crop_set.crops[i], policy, size) for i in two_class]).astype(np.float32)
    incorrect = miner.predict(crops, batch_size=64, verbose=0)[:, CLASSES.index(INCORRECT)]
    return two_class[incorrect >= HARD_SCORE]


def pooled_features(base):
    """A Keras model from the base's input to its pooled features (the input of its last dense layer)."""
    import keras

    return keras.Model(base.input, base.layers[-1].input)


def fit_gate(features: np.ndarray, targets: np.ndarray, weights: np.ndarray,
             regularisation: float) -> tuple[np.ndarray, float]:
    """A logistic regression of `targets` on standardised `features`, with class-balanced `weights`;
    returns its weights and bias on the raw features."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = features.mean(0), features.std(0) + 1e-6
    balance = np.where(targets == 1, len(targets) / (2 * max(targets.sum(), 1)),
                       len(targets) / (2 * max((1 - targets).sum(), 1)))
    model = LogisticRegression(C=1 / regularisation, max_iter=2000)
    model.fit((features - mean) / scale, targets, sample_weight=weights * balance)
    coefficients = model.coef_[0] / scale
    return coefficients, float(model.intercept_[0] - np.dot(coefficients, mean))


def platt(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Scale and offset of the logit that make the gate's probability calibrated on these faces."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, max_iter=1000).fit(logits.reshape(-1, 1), targets)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def gated_model(base, coefficients: np.ndarray, bias: float):
    """The three-class Keras model: the base's two probabilities times (1 - q), then q, where q is the
    sigmoid of `features . coefficients + bias`. Standard layers only (a softmax over (0, logit) is the
    sigmoid), so the file loads without maskmodel and exports to ONNX as the base does."""
    import keras

    features = base.layers[-1].input
    gate = keras.layers.Dense(2, activation="softmax", name="incorrect_gate")
    keep_and_q = gate(features)
    gate.set_weights([np.stack([np.zeros_like(coefficients), coefficients], axis=1).astype(np.float32),
                      np.array([0.0, bias], np.float32)])
    spread = keras.layers.Dense(2, use_bias=False, trainable=False, name="keep_share")
    kept = spread(keep_and_q)  # (1 - q, 1 - q)
    spread.set_weights([np.array([[1, 1], [0, 0]], np.float32)])
    pick = keras.layers.Dense(1, use_bias=False, trainable=False, name="incorrect_share")
    incorrect = pick(keep_and_q)  # q
    pick.set_weights([np.array([[0], [1]], np.float32)])
    two = keras.layers.Multiply(name="two_class_kept")([base.output, kept])
    outputs = keras.layers.Concatenate(name="three_classes")([two, incorrect])
    model = keras.Model(base.input, outputs, name=f"{base.name}_gated")
    for layer in model.layers:
        layer.trainable = False
    return model


def _features_of(extract, crop_set_crops: np.ndarray, copies: int, make) -> np.ndarray:
    rows = []
    for _ in range(copies):
        for chunk in np.array_split(np.arange(len(crop_set_crops)), max(1, -(-len(crop_set_crops) // 512))):
            batch = np.stack([make(crop_set_crops[i]) for i in chunk]).astype(np.float32)
            rows.append(extract.predict(batch, batch_size=128, verbose=0))
    return np.concatenate(rows)


def train_gate(shared: Path, out_dir: Path, config: GateConfig, log=print) -> dict:
    """Build the data, fit and calibrate the gate, and write the run folder (model.keras, model.onnx,
    model.json, metrics.json, run.json, synthetic.png: a sample sheet)."""
    import keras

    from maskmodel.detect.detector_config import create_face_detector, one_face_detector
    from maskmodel.loading import load
    from maskmodel.training.export import export_onnx

    started = time.time()
    rng = np.random.default_rng(config.seed)
    keras.utils.set_random_seed(config.seed)
    datasets = shared / "datasets"
    cache = model_cache()
    samples, report = load_dataset([datasets / "covid19-facemask", datasets / "real-facemask"],
                                   set(config.exclude), (0.8, 0.1, 0.1), config.seed)
    folder_sets = build_crop_sets(samples, CLASSES, one_face_detector("centerface"), cache, report, False)
    photos = split_photos(datasets / "ilc-2021", (0.8, 0.1, 0.1), config.seed, frozenset(config.exclude))
    photo_sets, _ = build_photo_crop_sets(photos, CLASSES, create_face_detector("centerface"), cache, False)
    train_set = merge_crop_sets(folder_sets, photo_sets)["train"]
    calibration_set = photo_sets["test"]
    log(f"real training faces {dict(Counter(CLASSES[i] for i in train_set.labels))}, "
        f"calibration faces {dict(Counter(CLASSES[i] for i in calibration_set.labels))}")

    landmark_detector = create_face_detector("centerface", scales=(CONTEXT_SIZE,), first_pass=0)
    unmasked = train_set.crops[train_set.labels == CLASSES.index("without_mask")]
    masked = train_set.crops[train_set.labels == CLASSES.index("with_mask")]
    synthetic, synthetic_labels, synthetic_names = synthesise(
        unmasked, landmarks_of_crops(unmasked, landmark_detector), masked,
        landmarks_of_crops(masked, landmark_detector), config, rng)
    log(f"synthetic faces {dict(Counter(n.split(':')[1] + '/' + n.split(':')[2] for n in synthetic_names))}")
    prepared = time.time()

    base = load(config.base, format="keras")
    size = base.input_shape[1]
    policy = CropPolicy(margin=0.2, square=True)
    hard = np.array([], dtype=int)
    if config.miner:
        hard = hard_examples(load(config.miner, format="keras"), train_set, policy)
    log(f"hard examples: {len(hard)} with/without training faces the miner scores >= {HARD_SCORE} incorrect")

    crops = np.concatenate([train_set.crops, synthetic, train_set.crops[hard].reshape(-1, *synthetic.shape[1:])])
    labels = np.concatenate([train_set.labels, synthetic_labels, train_set.labels[hard]])
    weights = np.concatenate([np.ones(len(train_set.labels)), np.full(len(synthetic), config.synthetic_weight),
                              np.full(len(hard), float(HARD_REPEAT))])
    extract = pooled_features(base)
    pool = train_set.crops
    x = _features_of(extract, crops, config.copies, lambda c: augment(c, policy, size, rng, AugmentConfig(), pool))
    y = np.tile((labels == CLASSES.index(INCORRECT)).astype(int), config.copies)
    coefficients, bias = fit_gate(x, y, np.tile(weights, config.copies), config.regularisation)
    cached = time.time()

    x_calibration = _features_of(extract, calibration_set.crops, 1, lambda c: runtime_crop(c, policy, size))
    y_calibration = (calibration_set.labels == CLASSES.index(INCORRECT)).astype(int)
    scale, offset = platt(x_calibration @ coefficients + bias, y_calibration)
    coefficients, bias = coefficients * scale, bias * scale + offset
    model = gated_model(base, coefficients, bias)
    probabilities = model.predict(np.stack([runtime_crop(c, policy, size) for c in calibration_set.crops])
                                  .astype(np.float32), batch_size=64, verbose=0)
    metrics = {"classes": CLASSES, "crop_policy": policy.to_dict(),
               "calibration": {"fitted_on": "ilc-2021 test photo faces", "count": int(len(y_calibration)),
                               "scale": scale, "offset": offset},
               "splits": {"test": classification_report(calibration_set.labels, probabilities, CLASSES)},
               "counts": {"train_real": dict(Counter(CLASSES[i] for i in train_set.labels)),
                          "synthetic": dict(Counter(n.split(":")[1] + "/" + n.split(":")[2] for n in synthetic_names)),
                          "hard_examples": int(len(hard))}}
    out_dir.mkdir(parents=True, exist_ok=True)
    with new_file(out_dir / "model.keras") as temp:
        model.save(temp)
    with new_file(out_dir / "model.onnx") as temp:
        export_onnx(model, temp)
    sheet = sample_sheet(synthetic, synthetic_names, rng)
    write_file_atomic(out_dir / "synthetic.png", cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))[1].tobytes())
    _write_json(out_dir / "metrics.json", metrics)
    _write_json(out_dir / "run.json", {"kind": "third-class gate", "config": asdict(config), "shared": str(shared),
                                       "seconds": {"prepare_data": round(prepared - started, 1),
                                                   "features_and_fit": round(cached - prepared, 1),
                                                   "total": round(time.time() - started, 1)}})
    _write_json(out_dir / CONTRACT_NAME, {"task": "classification", "input": {
        "size": size, "colour": "RGB", "range": [0, 255], "crop": policy.to_dict()}, "classes": CLASSES,
        "output": "softmax probabilities in the order of classes",
        "architecture": {"backbone": "MobileNetV2", "base": config.base, "head": "the base's, and a gate"}})
    return metrics


def sample_sheet(crops: np.ndarray, names: list[str], rng: np.random.Generator, per_row: int = 8,
                 rows_per_placement: int = 2, tile: int = 96) -> np.ndarray:
    """A grid of synthetic faces (the runtime crop, `tile` px), `rows_per_placement` rows a placement,
    each row labelled with its placement and class."""
    policy = CropPolicy(margin=0.2, square=True)
    lines = []
    for placement, (label, _, _) in synthetic_masks.PLACEMENTS.items():
        chosen = [i for i, n in enumerate(names) if n.split(":")[1] == placement]
        picked = rng.permutation(chosen)[:per_row * rows_per_placement] if chosen else []
        tiles = [runtime_crop(crops[i], policy, tile) for i in picked]
        tiles += [np.full((tile, tile, 3), 255, np.uint8)] * (per_row * rows_per_placement - len(tiles))
        caption = np.full((22, per_row * tile, 3), 255, np.uint8)
        cv2.putText(caption, f"{placement.replace('_', ' ')}: {label}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
        lines.append(caption)
        lines += [np.hstack(tiles[r * per_row:(r + 1) * per_row]) for r in range(rows_per_placement)]
    return np.vstack(lines)


def _write_json(path: Path, data: dict) -> None:
    write_file_atomic(path, json.dumps(data, indent=2).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True, help="The folder holding datasets/.")
    parser.add_argument("--out", type=Path, required=True)
    for field, default in asdict(GateConfig()).items():
        if field != "exclude":
            kind = type(default) if default is not None else str
            parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=default)
    args = parser.parse_args()
    config = GateConfig(**{f: getattr(args, f) for f in asdict(GateConfig()) if f != "exclude"})
    metrics = train_gate(args.shared, args.out, config, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(metrics["splits"]["test"]["per_class"], indent=1))


if __name__ == "__main__":
    main()
