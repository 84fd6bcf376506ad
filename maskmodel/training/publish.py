"""Publish a training run into `weights/`: versioned files + a manifest entry (never overwritten).

Usage::

    python -m maskmodel.training.publish runs/NAME --name mask-mobilenetv2-1.0 --version 1.0.0 \
        --crowd-dev ../shared/datasets/crowd-dev

`weights/MODEL_CARD.md` is rendered again from the manifest. The manifest entry records the files (sha256, size, URL), the input contract, the classes, the metrics
of the run's own test split and, with `--crowd-dev`, the classifier-only metrics on that set's annotated
faces, measured here through OpenCV DNN on the published ONNX file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

from maskmodel.annotations import read_voc_folder
from maskmodel.classifier import InputContract, MaskClassifier
from maskmodel.crops import CropPolicy
from maskmodel.evaluate import CROWD_DEV_OVERLAP, evaluate_annotated_faces
from maskmodel.training.model_card import render
from maskmodel.zoo import SEMVER, sha256_of

FORMATS = {"onnx": "model.onnx", "keras": "model.keras"}


def _summary(report: dict) -> dict:
    keys = ("count", "accuracy", "balanced_accuracy", "roc_auc")
    summary = {key: report[key] for key in keys}
    summary["recall"] = {name: c["recall"] for name, c in report["per_class"].items()}
    if "by_size" in report:
        summary["by_size"] = {b: {k: r[k] for k in ("count", "balanced_accuracy")} for b, r in report["by_size"].items()}
    return summary


def publish(run_dir: Path, name: str, version: str, weights_dir: Path, description: str,
            crowd_dev: Path | None = None) -> dict:
    """Copy the run's model files into `weights_dir` and add `name@version` to its manifest."""
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
    record = {
        "description": description,
        "files": files,
        **InputContract(config["input_size"], tuple(metrics["classes"]),
                        CropPolicy.from_dict(metrics["crop_policy"])).to_manifest(),
        "output": "softmax probabilities in the order of classes",
        "architecture": {"backbone": "MobileNetV2", "alpha": config["alpha"], "head": "global average pool, dropout, dense softmax"},
        "metrics": {"training-data-test-split": _summary(metrics["splits"]["test"])},
        "training_data": {"datasets": [Path(p).name for p in run["data"]], "excluded_files": config["exclude"],
                          "samples": {s: r["count"] for s, r in metrics["splits"].items()}},
        "recipe": {k: config[k] for k in ("crop_margin", "first_trainable_block", "augmented_copies",
                                           "head_epochs", "finetune_epochs", "head_lr", "finetune_lr", "seed")},
        "command": " ".join(["maskmodel train", *run["data"], f"--out {run_dir}", f"--alpha {config['alpha']}",
                             f"--input-size {config['input_size']}", f"--unfreeze-from {config['first_trainable_block']}",
                             f"--copies {config['augmented_copies']}", f"--margin {config['crop_margin']}",
                             f"--seed {config['seed']}", *[f"--exclude {name}" for name in config["exclude"]]]),
        "training_seconds": run["seconds"]["total"],
        "date": datetime.date.today().isoformat(),
        "license": "MIT",
    }
    if crowd_dev is not None:
        classifier = MaskClassifier(weights_dir / files["onnx"]["file"], InputContract.from_manifest(record))
        faces = evaluate_annotated_faces(classifier, read_voc_folder(crowd_dev, CROWD_DEV_OVERLAP))
        record["metrics"]["crowd-dev-faces"] = {
            **_summary(faces),
            "note": "annotated faces classified from their boxes; mask_weared_incorrect and the two images "
                    "that also appear in real-facemask left out",
        }
    entry["versions"][version] = record
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
    parser.add_argument("--crowd-dev", type=Path)
    args = parser.parse_args()
    record = publish(args.run_dir, args.name, args.version, args.weights_dir, args.description, args.crowd_dev)
    print(json.dumps(record["metrics"], indent=2))


if __name__ == "__main__":
    main()
