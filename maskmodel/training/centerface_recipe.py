"""The published fine-tuned CenterFace's training run (issue 42), rerunnable by anyone with the data:

    python -m maskmodel.training.centerface_recipe --shared ../shared --out runs/centerface-ft

Data: ILC train (the project's one split, `photos.split_photos`, seed 0, 80/10/10) and the fixed half of
crowd-dev listed in `datasets/crowd-dev-detector-train.txt`; the score threshold chosen on ILC test (the
original's precision there), measured on ILC val. Never trained or tuned on ILC val, nor on the other
crowd-dev photos (the held-back part every crowd-dev figure of a fine-tuned detector uses).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from maskmodel.evaluation.annotations import read_voc_folder
from maskmodel.training.photos import split_photos
from maskmodel.training.train_detector import DetectorTrainConfig, measure_run, train_detector

CROWD_DEV_LIST = Path(__file__).resolve().parents[2] / "datasets" / "crowd-dev-detector-train.txt"


def crowd_dev_train_names(list_file: Path = CROWD_DEV_LIST) -> list[str]:
    """The crowd-dev photo names a fine-tuned detector may train on (the fixed part)."""
    lines = Path(list_file).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=DetectorTrainConfig.steps)
    parser.add_argument("--unlabelled", choices=("ignore", "teacher"), default="ignore")
    parser.add_argument("--student-alpha", type=float, default=None,
                        help="a narrower student taught the published maps (issue 43) instead of a fine-tune")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-4, a student's 1e-3)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--measure-only", action="store_true",
                        help="only the end of a finished run in --out: its threshold, figures and card (again)")
    args = parser.parse_args()
    ilc = split_photos(args.shared / "datasets/ilc-2021")
    names = set(crowd_dev_train_names())
    crowd = [image for image in read_voc_folder(args.shared / "datasets/crowd-dev") if image.image_path.name in names]
    train = [p.annotated for p in ilc if p.split == "train"] + crowd
    val = [p.annotated for p in ilc if p.split == "val"]
    calibration = [p.annotated for p in ilc if p.split == "test"]
    config = DetectorTrainConfig(steps=args.steps, unlabelled=args.unlabelled, student_alpha=args.student_alpha,
                                 learning_rate=args.lr or (1e-3 if args.student_alpha else 1e-4),
                                 data=["ilc-2021 train (split_photos, seed 0)", f"crowd-dev: {len(crowd)} photos of "
                                       "datasets/crowd-dev-detector-train.txt"], val_data=["ilc-2021 val"])
    teacher = args.shared / "models/face/centerface_bnmerged.onnx"
    log = lambda line: print(line, flush=True)  # noqa: E731
    if args.measure_only:
        metrics = json.loads((args.out / "metrics.json").read_text())
        measure_run(args.out, teacher, config, train, val, calibration,
                    {key: metrics[key] for key in ("history", "train_seconds")}, log)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    train_detector(train, val, args.out, teacher, config, resume=args.resume, progress=False, log=log,
                   calibration_images=calibration)


if __name__ == "__main__":
    main()
