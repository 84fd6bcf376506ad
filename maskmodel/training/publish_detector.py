"""Publish a `maskmodel train-detector` run into `weights/`: its ONNX file and a manifest record (never
overwritten), with the figures of `bench.detector` against the original.

Usage::

    python -m maskmodel.training.publish_detector runs/NAME --name centerface --version 2.0.0 \\
        --bench bench/results/detector.json [--make-default]

The record keeps the run card's input contract and settings (its score threshold), the bench's rows of the
run and of the original on each set, the training data and the command that made it; `weights/MODEL_CARD.md`
is rendered again. The default version moves only with `--make-default`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

from maskmodel.training.model_card import render
from maskmodel.training.publish import DATA_LICENCES
from maskmodel.zoo import SEMVER, sha256_of
from maskmodel.zoo.local_detectors import detector_card, detector_file

def publish_detector(run: Path, name: str, version: str, weights_dir: Path, bench: dict, description: str,
                     command: str, make_default: bool = False, alias: str | None = None, cost: dict | None = None) -> dict:
    """Add `run`'s detector to the manifest as `name@version` (a new version of a detector entry, or the first
    of a new one, whose short name is `alias`); `bench` is `bench.detector`'s JSON, whose rows of `str(run)` and
    of the original become the metrics; `cost` is `bench.detector_cost`'s JSON (the run's network beside the
    original's), kept as the record's `cost`."""
    if not SEMVER.match(version):
        raise ValueError(f"Expected a version like 2.0.0. Received: {version!r}")
    card, source = detector_card(run), detector_file(run)
    student = card["training"].get("student_alpha")
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if name not in manifest["models"]:
        if not alias:
            raise ValueError(f"{name} is a new detector: give its short name (alias)")
        manifest["models"][name] = {"task": "face-detection", "alias": alias, "default": version, "versions": {}}
    entry = manifest["models"][name]
    if version in entry["versions"]:
        raise ValueError(f"{name}@{version} is published already: choose a new version")
    file_name = f"{name}-{version}.onnx"
    shutil.copyfile(source, weights_dir / file_name)
    rows = {set_name: {detector: row for detector, row in by_detector.items()
                       if detector.split("@")[0] == str(run) or detector.startswith("original")}
            for set_name, by_detector in bench["results"].items()}
    entry["versions"][version] = {
        "description": description,
        "files": {"onnx": {"file": file_name, "sha256": sha256_of(weights_dir / file_name),
                           "size": (weights_dir / file_name).stat().st_size, "url": f"{manifest['base_url']}/{file_name}"}},
        "input": card["input"],
        "output": card["output"],
        "settings": card.get("settings", {}),
        "metrics": rows,
        "training_data": card["data"],
        "recipe": card["training"],
        "command": command,
        "date": datetime.date.today().isoformat(),
        "source": (f"distilled from centerface@1.0.0 into MobileNetV2 width {student} (Keras' ImageNet weights) by "
                   f"`{command}`" if student else f"fine-tuned from centerface@1.0.0 by `{command}`"),
        "license": ("Not plain MIT: " + ("a student of CenterFace (MIT, copyright 2019 StarClouds; its neck and heads "
                                         "are the start) on Keras' ImageNet MobileNetV2 (Apache 2.0)" if student else
                                         "fine-tuned from CenterFace (MIT, copyright 2019 StarClouds)")
                    + f", trained on ilc-2021 ({DATA_LICENCES['ilc-2021']}) and part of crowd-dev (CC0)"),
    }
    if cost:
        mine, original = cost["results"][str(run)], next(v for k, v in cost["results"].items() if k != str(run))
        entry["versions"][version]["cost"] = {
            "cpu": cost.get("cpu"), "backend_note": "one pass, median, beside centerface@1.0.0 in the same run",
            "by_size": {size: {"input": row["input"], "gmac": round(row["gmac"], 3), "ms": round(row["ms"], 1),
                               "original_ms": round(original[size]["ms"], 1)} for size, row in mine.items()}}
    if make_default:
        entry["default"] = version
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    (weights_dir / "MODEL_CARD.md").write_text(render(manifest))
    return entry["versions"][version]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--bench", type=Path, required=True, help="bench.detector's JSON with this run's rows")
    parser.add_argument("--description", required=True)
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--weights-dir", type=Path, default=Path("weights"))
    parser.add_argument("--make-default", action="store_true")
    parser.add_argument("--alias", help="the short name of a new detector (--face-detector NAME)")
    parser.add_argument("--cost", type=Path, help="bench.detector_cost's JSON with this run's network and the original's")
    args = parser.parse_args()
    record = publish_detector(args.run, args.name, args.version, args.weights_dir, json.loads(args.bench.read_text()),
                              args.description, args.command, args.make_default, args.alias,
                              json.loads(args.cost.read_text()) if args.cost else None)
    print(json.dumps(record["metrics"], indent=2))


if __name__ == "__main__":
    main()
