"""What the third-class gate trains on (`third_class`): real faces, synthetic masks made from them, hard
examples mined among them, and the faces it is calibrated on.

- real faces of the training split: with/without and the photo sets' incorrectly worn masks;
- synthetic masks (`synthetic_masks`) on real unmasked faces of the training split: below the nose or on
  the chin (`mask_incorrect`), and over the nose or low on it (`with_mask`), from templates and from real
  masks of masked faces, so that the gate learns where the mask sits, not what a synthetic mask looks like;
- hard examples: with/without training faces that an earlier three-class model (the miner) calls
  `mask_incorrect` or scores it at `HARD_SCORE` or more, repeated `HARD_REPEAT` times;
- the calibration faces: the photo sets' test split (neither trained on nor reported).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from maskmodel.classify.crops import CropPolicy
from maskmodel.training import synthetic_masks
from maskmodel.training.augment import runtime_crop
from maskmodel.training.data import CONTEXT_SIZE, CropSet, build_crop_sets, load_dataset
from maskmodel.training.photos import build_photo_crop_sets, split_photos
from maskmodel.training.train import feature_passes, merge_crop_sets
from maskmodel.zoo import cache_dir as model_cache

INCORRECT = "mask_incorrect"
CLASSES = ["with_mask", "without_mask", INCORRECT]
HARD_SCORE = 0.3
HARD_REPEAT = 4


@dataclass
class GateConfig:
    """Settings of one third-class gate run (`third_class`; recorded in its `run.json`): its data, then its
    training."""

    base: str = "mask-mobilenetv2-0.35@3.0.0"
    miner: str | None = "mask-mobilenetv2-0.35@4.0.0"  # the model whose confusions give the hard examples
    synthetic_per_face: int = 1  # synthetic faces of each class made from each unmasked training face
    real_mask_share: float = 0.5  # of synthetic masks, the share cut from real masked faces (else templates)
    synthetic_weight: float = 0.5  # weight of a synthetic face against a real one
    copies: int = 4  # augmented copies of each training crop
    first_trainable_block: int = 12  # where the branch starts (or the top fine-tuned with a shared gate)
    gate_epochs: int = 3  # the gate alone, on the base's features
    epochs: int = 10  # then the branch (or the top) with it (0: the gate alone)
    distil_weight: float = 1.0  # "shared": weight of keeping the base's two probabilities against the gate's loss
    gate: str = "branch"  # the gate's features: its own ("branch") or the top's ("shared", fine-tuned with it)
    branch_last_block: int = 13  # a branch copies the blocks from first_trainable_block to this one
    branch_width: int = 256  # channels of the branch's 1x1 convolution before pooling
    seed: int = 0
    exclude: tuple[str, ...] = ("with_mask239.jpg",)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # as `maskmodel train` splits

    not_options = ("exclude", "split_fractions")  # fields the command line does not set


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


def outputs_of(model):
    """A `features` function for `train.feature_passes`: `model`'s outputs for a list of crops, as float16."""
    return lambda crops: model.predict(np.stack(crops).astype(np.float32), batch_size=128, verbose=0).astype(np.float16)


def landmark_detector():
    """CenterFace in one pass at the context crops' own size: the landmarks synthetic masks are placed by."""
    from maskmodel.detect.detector_config import create_face_detector

    return create_face_detector("centerface", scales=(CONTEXT_SIZE,), first_pass=0)


def hard_examples(miner, crop_set: CropSet, policy: CropPolicy) -> np.ndarray:
    """Indices of the with/without faces of `crop_set` that `miner` (a three-class Keras model) calls
    `mask_incorrect` or scores it at `HARD_SCORE` or more."""
    size = miner.input_shape[1]
    two_class = np.flatnonzero(crop_set.labels != CLASSES.index(INCORRECT))
    if not len(two_class):
        return two_class
    scores = feature_passes(crop_set.crops[two_class], 1, outputs_of(miner), lambda c: runtime_crop(c, policy, size))
    return two_class[scores[:, CLASSES.index(INCORRECT)] >= HARD_SCORE]


@dataclass
class GateData:
    """What the gate trains on (context crops, labels as indices into `CLASSES`, sample weights and what
    each is: `real`, `hard` or `synthetic:<placement>:<source>`), the faces it is calibrated on, and the
    test split of the folder datasets (used for neither)."""

    crops: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    kinds: list[str]
    calibration: CropSet
    test: CropSet | None

    def counts(self) -> dict:
        """Faces per kind and class."""
        counted = Counter(f"{kind.split(':')[0]}/{kind.split(':')[1] if ':' in kind else CLASSES[label]}"
                          for kind, label in zip(self.kinds, self.labels))
        return dict(sorted(counted.items()))


def gate_data(data: list[Path], photos: list[Path], config: GateConfig, log=print) -> GateData:
    """The training faces of folder-per-class `data` and VOC `photos` (split as `maskmodel train` splits
    them), the synthetic faces made from them and the hard examples mined among them; the calibration
    faces are the photos' test split."""
    from maskmodel.detect.detector_config import create_face_detector, one_face_detector
    from maskmodel.loading import load

    rng = np.random.default_rng(config.seed)
    cache = model_cache()
    samples, report = load_dataset(list(data), set(config.exclude), config.split_fractions, config.seed)
    folder_sets = build_crop_sets(samples, CLASSES, one_face_detector("centerface"), cache, report, False)
    photo_detector = create_face_detector("centerface")
    splits = [split_photos(root, config.split_fractions, config.seed, frozenset(config.exclude)) for root in photos]
    photo_sets = [build_photo_crop_sets(split, CLASSES, photo_detector, cache, False)[0] for split in splits]
    train_set = merge_crop_sets(folder_sets, *photo_sets)["train"]
    calibration = merge_crop_sets(*photo_sets)["test"]
    landmarks = landmark_detector()
    unmasked = train_set.crops[train_set.labels == CLASSES.index("without_mask")]
    masked = train_set.crops[train_set.labels == CLASSES.index("with_mask")]
    synthetic, synthetic_labels, synthetic_kinds = synthesise(
        unmasked, landmarks_of_crops(unmasked, landmarks), masked, landmarks_of_crops(masked, landmarks), config, rng)
    hard = np.array([], dtype=int)
    if config.miner:
        hard = hard_examples(load(config.miner, format="keras"), train_set, CropPolicy(margin=0.2, square=True))
    result = GateData(
        np.concatenate([train_set.crops, synthetic, train_set.crops[hard].reshape(-1, *synthetic.shape[1:])]),
        np.concatenate([train_set.labels, synthetic_labels, train_set.labels[hard]]),
        np.concatenate([np.ones(len(train_set.labels)), np.full(len(synthetic), config.synthetic_weight),
                        np.full(len(hard), float(HARD_REPEAT - 1))]),  # with the real copy: HARD_REPEAT times
        ["real"] * len(train_set.labels) + synthetic_kinds + ["hard"] * len(hard), calibration,
        folder_sets.get("test"))
    log(f"gate training faces {result.counts()}; calibration faces "
        f"{dict(Counter(CLASSES[i] for i in calibration.labels))}")
    return result


def sample_sheet(crops: np.ndarray, names: list[str], rng: np.random.Generator, per_row: int = 8,
                 tile: int = 96, small: int = 20) -> np.ndarray:
    """A grid of synthetic faces, two rows a placement under a caption naming it and its class: `per_row`
    runtime crops at `tile` px, then the same faces at `small` px (crowd-dev's small faces), enlarged."""
    policy = CropPolicy(margin=0.2, square=True)
    lines = []
    for placement, (label, _, _) in synthetic_masks.PLACEMENTS.items():
        chosen = [i for i, n in enumerate(names) if n.split(":")[1] == placement]
        tiles = [runtime_crop(crops[i], policy, tile) for i in rng.permutation(chosen)[:per_row]]
        tiles += [np.full((tile, tile, 3), 255, np.uint8)] * (per_row - len(tiles))
        shrunk = [cv2.resize(cv2.resize(t, (small, small), interpolation=cv2.INTER_AREA), (tile, tile),
                             interpolation=cv2.INTER_LINEAR) for t in tiles]
        caption = np.full((22, per_row * tile, 3), 255, np.uint8)
        cv2.putText(caption, f"{placement.replace('_', ' ')}: {label} (below: the same at {small} px)", (4, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        lines += [caption, np.hstack(tiles), np.hstack(shrunk)]
    return np.vstack(lines)


def main() -> None:
    """Write a sample sheet of synthetic masks made from a folder-per-class dataset's faces."""
    import argparse

    from maskmodel.detect.detector_config import one_face_detector
    from maskmodel.io.imageio import encode_image, read_image
    from maskmodel.runtime.files import write_file_atomic
    from maskmodel.training.data import detector_crop

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder", type=Path, help="A dataset with with_mask/ and without_mask/ folders.")
    parser.add_argument("--out", type=Path, required=True, help="The image to write (.png or .jpg).")
    parser.add_argument("--faces", type=int, default=40, help="Faces taken from each class folder.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    one, landmarks = one_face_detector("centerface"), landmark_detector()
    crops = {label: np.stack([detector_crop(read_image(path), one)[0]
                              for path in sorted((args.folder / label).iterdir())[:args.faces]])
             for label in ("without_mask", "with_mask")}
    rng = np.random.default_rng(args.seed)
    made, _, names = synthesise(crops["without_mask"], landmarks_of_crops(crops["without_mask"], landmarks),
                                crops["with_mask"], landmarks_of_crops(crops["with_mask"], landmarks),
                                GateConfig(synthetic_per_face=2), rng)
    sheet = sample_sheet(made, names, rng)
    write_file_atomic(args.out, encode_image(cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), args.out.suffix))


if __name__ == "__main__":
    main()
