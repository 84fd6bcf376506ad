"""Publish a training run into `weights/`: versioned files + a manifest entry (never overwritten).

Usage::

    python -m maskmodel.training.publish runs/NAME --name mask-mobilenetv2-1.0 --version 1.0.0 \
        --crowd-dev ../shared/datasets/crowd-dev \
        --crowd-dev-exclude maksssksksss71.png --crowd-dev-exclude maksssksksss758.png \
        [--covid19-test ../shared/datasets/covid19-facemask/test] [--make-default]

`weights/MODEL_CARD.md` is rendered again from the manifest. The manifest entry records the files (sha256, size,
URL), the input contract, the classes, the metrics of the run's own test split, of the validation part of each
photo set it trained on (`--photos`) and, with `--crowd-dev` / `--covid19-test`, the classifier-only metrics
on those sets, measured here through OpenCV DNN on the published ONNX file. `--crowd-dev-exclude NAME`
(repeatable) leaves an image out of the crowd-dev evaluation, for example one that also appears in the
training data (the two above: `datasets/crowd-dev.md`); the names are recorded with the metrics
(`excluded_images`). A model's default version moves to the new one only with `make_default` (or when it is
the model's first version).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from maskmodel.evaluation.annotations import AnnotatedFace, AnnotatedImage, read_voc_folder
from maskmodel.classify.classifier import InputContract, MaskClassifier
from maskmodel.classify.crops import CropPolicy
from maskmodel.evaluation.evaluate import TWO_CLASSES, evaluate_annotated_faces
from maskmodel.detect.detector_config import one_face_detector
from maskmodel.detect.faces import largest_face
from maskmodel.io.imageio import read_image
from maskmodel.training.photos import split_photos
from maskmodel.training.model_card import render
from maskmodel.zoo import SEMVER, sha256_of
from maskmodel.zoo.registry import model_info
from maskmodel.training.gate_data import GateConfig
from maskmodel.training.third_class import GATE_RUN

FORMATS = {"onnx": "model.onnx", "keras": "model.keras"}
# What is known about each training set's licence (for the manifest and the model card).
DATA_LICENCES = {
    "covid19-facemask": "free for non-commercial use (data-flair)",
    "real-facemask": "MIT repository (chandrikadeb7/Face-Mask-Detection)",
    "ilc-2021": "no licence stated: used here for training and measuring only, its images are not redistributed",
}


def weights_licence(datasets: Iterable[str]) -> str:
    """The terms of weights trained on `datasets`: MIT only when every dataset allows it; otherwise the
    training data's terms carry over (stated, dataset by dataset)."""
    restricted = {name: DATA_LICENCES.get(name, "not recorded") for name in datasets
                  if not DATA_LICENCES.get(name, "").startswith("MIT")}
    if not restricted:
        return "MIT"
    return ("Not plain MIT: the weights follow the terms of their training data, so use them for non-commercial "
            "research and evaluation only (" + "; ".join(f"{k}: {v}" for k, v in restricted.items()) + ")")


def _summary(report: dict) -> dict:
    keys = ("count", "accuracy", "balanced_accuracy", "roc_auc", "ece")
    summary = {key: report[key] for key in keys if key in report}
    summary["recall"] = {name: c["recall"] for name, c in report["per_class"].items()}
    if "by_size" in report:
        summary["by_size"] = {b: {k: r[k] for k in ("count", "balanced_accuracy")} for b, r in report["by_size"].items()}
    return summary


def _with_own_classes(report: dict) -> dict:
    """The with/without summary of `report`, plus the model's own classes when it has more."""
    summary = _summary(report["two_class"])
    if len(report["per_class"]) > len(TWO_CLASSES):
        summary["own_classes"] = {"count": report["count"], "balanced_accuracy": report["balanced_accuracy"],
                                  "recall": {n: c["recall"] for n, c in report["per_class"].items()},
                                  "confusion_matrix": report["confusion_matrix"]}
    return summary


def _training_parts(run: dict, metrics: dict, run_dir: Path) -> dict:
    """The record's architecture, data, recipe, command and licence of a `maskmodel train` run."""
    config = run["config"]
    return {
        "architecture": {"backbone": "MobileNetV2", "alpha": config["alpha"], "head": "global average pool, dropout, dense softmax"},
        "training_data": {"datasets": [Path(p).name for p in run["data"] + run.get("photos", [])],
                          "excluded_files": config["exclude"],
                          "samples": {s: r["count"] for s, r in metrics["splits"].items()},
                          "licences": {Path(p).name: DATA_LICENCES.get(Path(p).name, "not recorded")
                                       for p in run["data"] + run.get("photos", [])}},
        "recipe": {**{k: config[k] for k in ("crop_margin", "first_trainable_block", "augmented_copies",
                                              "head_epochs", "finetune_epochs", "head_lr", "finetune_lr", "seed")},
                   "face_detector": run.get("face_detector", "yunet"),
                   **({"ignored_photo_labels": config["ignore_labels"]} if config.get("ignore_labels") else {}),
                   **({"temperature": metrics["calibration"]["temperature"],
                       "calibrated_on": f"{metrics['calibration']['fitted_on']} ({metrics['calibration']['count']})"}
                      if "calibration" in metrics else {})},
        "command": " ".join(["maskmodel train", *run["data"], *[f"--photos {p}" for p in run.get("photos", [])],
                             f"--out {run_dir}", f"--alpha {config['alpha']}",
                             f"--input-size {config['input_size']}", f"--unfreeze-from {config['first_trainable_block']}",
                             f"--copies {config['augmented_copies']}", f"--margin {config['crop_margin']}",
                             f"--seed {config['seed']}", *[f"--exclude {name}" for name in config["exclude"]],
                             f"--face-detector {run.get('face_detector', 'yunet')}",
                             *[f"--ignore-label {label}" for label in config.get("ignore_labels", [])]]),
        "license": weights_licence(Path(p).name for p in run["data"] + run.get("photos", [])),
    }


def _gate_parts(run: dict, metrics: dict) -> dict:
    """The record's architecture, data, recipe, command and licence of a third-class gate run
    (`maskmodel.training.third_class`): its base's, plus the gate, the synthetic faces and the calibration."""
    config, base = run["config"], model_info(run["config"]["base"])
    datasets = [Path(p).name for p in run["data"] + run["photos"]]
    return {
        "architecture": {**base.architecture, "base": f"{base.name}@{base.version}",
                         "head": f"{base.name}@{base.version}'s dense softmax (with/without"
                                 + (", the network unchanged) and a gate on a branch of its own (a copy of blocks "
                                    f"{config['first_trainable_block']}-{config['branch_last_block']} and a 1x1 "
                                    f"convolution to {config['branch_width']} channels, pooled)"
                                    if config["gate"] == "branch" else
                                    ", top blocks fine-tuned and distilled) and a gate on its pooled features")
                                 + ": a logistic unit giving q = P(mask_incorrect); outputs (1 - q) p_with, "
                                   "(1 - q) p_without, q"},
        "training_data": {"datasets": datasets, "excluded_files": list(config["exclude"]),
                          "samples": {"gate": metrics["counts"],
                                      **{split: report["count"] for split, report in metrics["splits"].items()}},
                          "synthetic_masks": "MaskTheFace's templates (MIT, maskmodel/training/mask_templates) and "
                                             "real masks moved onto unmasked training faces",
                          "licences": {name: DATA_LICENCES.get(name, "not recorded") for name in datasets}},
        "recipe": {**{k: v for k, v in config.items() if k not in GateConfig.not_options},
                   "calibrated_on": f"{metrics['calibration']['fitted_on']} ({metrics['calibration']['count']}): "
                                    f"two-class temperature {metrics['calibration']['temperature']}, gate Platt "
                                    f"scale {metrics['calibration']['scale']:.3f}, offset "
                                    f"{metrics['calibration']['offset']:.3f}"},
        "command": " ".join(["python -m maskmodel.training.third_class", *run["data"],
                             *[f"--photos {p}" for p in run["photos"]], f"--out {run['out']}",
                             *[f"--{k.replace('_', '-')} {v}" for k, v in config.items()
                               if k not in GateConfig.not_options and v != getattr(GateConfig(), k)]]),
        "license": weights_licence(datasets),
    }


def folder_as_annotations(root: Path, classes: tuple[str, ...]) -> list[AnnotatedImage]:
    """`root/<class>/*` images as annotations: the largest one-pass YuNet face, or the whole image."""
    detector = one_face_detector()
    images = []
    for label in classes:
        folder = Path(root) / label
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            image = read_image(path)
            images.append(AnnotatedImage(path, (AnnotatedFace(largest_face(detector.detect(image), image)[0], label),)))
    return images


def publish(run_dir: Path, name: str, version: str, weights_dir: Path, description: str,
            crowd_dev: Path | None = None, covid19_test: Path | None = None, make_default: bool = False,
            crowd_dev_exclude: Iterable[str] = ()) -> dict:
    """Copy the run's model files into `weights_dir` and add `name@version` to its manifest.

    `crowd_dev_exclude`: image file names left out of the crowd-dev evaluation (recorded with its metrics).
    """
    if not SEMVER.match(version):
        raise ValueError(f"Expected a semantic version like 1.0.0. Received: version={version!r}")
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["models"].setdefault(name, {"task": "classification", "default": version, "versions": {}})
    if version in entry["versions"]:
        raise ValueError(f"{name}@{version} is already published; publish a new version instead")
    run = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = run["config"]
    if run.get("kind") == GATE_RUN:  # the input contract is its base's
        config = {**config, "input_size": json.loads((run_dir / "model.json").read_text())["input"]["size"]}
    files = {}
    for format, source in FORMATS.items():
        file_name = f"{name}-{version}.{format}"
        shutil.copyfile(run_dir / source, weights_dir / file_name)
        files[format] = {
            "file": file_name,
            "sha256": sha256_of(weights_dir / file_name),
            "size": (weights_dir / file_name).stat().st_size,
            "url": f"{manifest['base_url']}/{file_name}",
        }
    contract = InputContract(config["input_size"], tuple(metrics["classes"]),
                             CropPolicy.from_dict(metrics["crop_policy"])).to_manifest()
    record = {"description": description, "files": files, **contract,
              "output": "softmax probabilities in the order of classes",
              "metrics": {"training-data-test-split": _summary(metrics["splits"]["test"])},
              **(_gate_parts(run, metrics) if run.get("kind") == GATE_RUN else _training_parts(run, metrics, run_dir)),
              "training_seconds": run["seconds"]["total"], "date": datetime.date.today().isoformat()}
    classifier = MaskClassifier(weights_dir / files["onnx"]["file"], InputContract.from_manifest(record["input"], record["classes"]))
    for photos in run.get("photos", []):
        val = [p.annotated for p in split_photos(Path(photos), tuple(config["split_fractions"]), config["seed"],
                                                 frozenset(config["exclude"])) if p.split == "val"]
        if not val:  # a split without validation photos
            continue
        record["metrics"][f"{Path(photos).name}-val-faces"] = {
            **_with_own_classes(evaluate_annotated_faces(classifier, val)),
            "note": "annotated faces of the validation photos (duplicate-aware seeded split, never trained on) "
                    "classified from their boxes",
        }
    if covid19_test is not None:
        faces = evaluate_annotated_faces(classifier, folder_as_annotations(covid19_test, TWO_CLASSES))
        record["metrics"]["covid19-facemask-test"] = {
            **_summary(faces["two_class"]), "note": "largest YuNet face of each image (the whole image if none)"}
    if crowd_dev is not None:
        excluded = sorted(set(crowd_dev_exclude))
        faces = evaluate_annotated_faces(classifier, read_voc_folder(crowd_dev, frozenset(excluded)))
        record["metrics"]["crowd-dev-faces"] = {
            **_with_own_classes(faces),
            "excluded_images": excluded,
            "note": "annotated faces classified from their boxes; "
                    + ("the images listed in excluded_images left out; " if excluded else "")
                    + "with/without metrics leave out mask_weared_incorrect faces (and a three-class model's third "
                      "output), own_classes scores them as mask_incorrect",
        }
    entry["versions"][version] = record
    if make_default or len(entry["versions"]) == 1:
        entry["default"] = version
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    (weights_dir / "MODEL_CARD.md").write_text(render(manifest))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--description", default="Face-mask classifier (with_mask / without_mask).")
    parser.add_argument("--crowd-dev", type=Path, help="crowd-dev (VOC: annotations/ and images/).")
    parser.add_argument("--crowd-dev-exclude", action="append", default=[], metavar="NAME",
                        help="Image file name to leave out of the crowd-dev evaluation (repeatable).")
    parser.add_argument("--covid19-test", type=Path, help="covid19-facemask/test (folder per class).")
    parser.add_argument("--make-default", action="store_true", help="Make this the model's default version.")
    args = parser.parse_args()
    record = publish(args.run_dir, args.name, args.version, args.weights_dir, args.description, args.crowd_dev,
                     args.covid19_test, args.make_default, args.crowd_dev_exclude)
    print(json.dumps(record["metrics"], indent=2))


if __name__ == "__main__":
    main()
