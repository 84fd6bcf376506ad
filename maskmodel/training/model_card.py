"""`weights/MODEL_CARD.md`, rendered from `weights/manifest.json` so that its numbers cannot drift."""

from __future__ import annotations

import json

from pathlib import Path

from maskmodel.zoo import DEFAULT_CLASSIFIER

INTRO = """# Model card: maskmodel face-mask classifiers

Generated from `weights/manifest.json` by `python -m maskmodel.training.model_card` (run by the publish
step); edit the text in `maskmodel/training/model_card.py`, never the numbers here.

## What they do
Classify a face crop as `with_mask` or `without_mask` (1.x and 3.x versions), or as `with_mask`, `without_mask`
or `mask_incorrect` (2.x versions: a mask worn below the nose or on the chin). The classes of each version are
listed in the manifest, in the order of the model's outputs. They are the second stage of the maskmodel
pipeline: a face detector (CenterFace by default) finds faces, each face box is cut by the project's one crop
function (square, margin on every side, border replicated, area/bilinear resize) and classified.

## Intended use and limits
- Counting mask wearing in photos and video of public places, privacy-safe reporting (`--blur-faces`),
  research. Not for decisions about individual people.
- 1.x: trained on face photos from the web (covid19-facemask, real-facemask); a part of covid19-facemask
  has synthetic (pasted) masks. 2.x: the same plus the faces of ilc-2021's real photos (street, groups,
  portraits), cut at the runtime detector's boxes; ilc-2021 states **no licence**: it was used for training
  and measuring only, and none of its images are redistributed. Each version lists its data and what is
  known of their licences.
- Measured on real street and crowd photos (crowd-dev) and reported by face size: faces under 16 px are
  guesses more often. The with/without metrics leave incorrectly worn masks out (and a three-class model's
  third output); "own classes" rows score a three-class model on all of its classes.
- Errors seen on crowd-dev: unmasked faces that are dark, turned away, or cut by a head in front are the
  most frequent mistakes (called `with_mask`).

## How they were trained
Detector-aligned crops (YuNet, longer side 640 px; the whole image when no face is found), duplicate-aware
splits (exact and perceptual-hash near duplicates never straddle train/val/test), augmentation for real
photos (flips, small rotations/scales/shifts, colour and low-light jitter, blur, JPEG artefacts, occluding
heads pasted over an edge, and low-resolution simulation: faces shrunk to 8-48 px and enlarged again),
ImageNet MobileNetV2, phase 1 head only on cached backbone features, phase 2 top blocks unfrozen at a low
learning rate, early stopping on validation loss. 2.x adds the faces of annotated photos (`--photos`), each
cut at the runtime detector's box (YuNet at 640 and 1024 px) that matches its annotated box (IoU >= 0.3), or
at the annotated box where the detector misses it, with its annotated label; photos are split into
train/val/test duplicate-aware by a seeded hash, and the val part is reported apart.

3.x (the default from 3.0.0): every crop is cut at the boxes of the runtime's default detector (CenterFace
at 800 px, its own box style), for the one-face folders and the annotated photos alike; 128 px input (about
a quarter of 224 px's cost per face; crowd faces are about 23 px, so little detail is lost); two classes, the
photos' incorrectly worn masks left out (`--ignore-label mask_incorrect`: the third class cost 2.0.0 masked
faces); after training, a temperature fitted on the ILC val faces is folded into the last layer, so that the
probabilities mean what they say (expected calibration error, ECE, in the tables).

4.x: the 3.x recipe with three classes: the photos' incorrectly worn masks kept as `mask_incorrect`, the loss
weighted so that each class counts alike (the third class has about 300 training faces of 6,900).

## Which version is the default
The default is the two-class model with the best with/without balanced accuracy on crowd-dev and ILC val
together, among those that cost no more per face than the previous default. 3.0.0 raises balanced accuracy
on both (crowd-dev 0.926 to 0.966, ILC val 0.919 to 0.957) and without_mask recall (0.882 to 0.970) at about a
third of the cost per face; its with_mask recall on crowd-dev is 0.961 against 1.0.0's 0.971 (about 6 of
645 masked faces more are called unmasked).

A three-class model becomes the default only if, on crowd-dev and ILC val faces, its with/without balanced
accuracy (a `mask_incorrect` call on a masked or unmasked face counting as an error) is within 0.005 of the
default's, its `mask_incorrect` recall is at least 0.65 at precision at least 0.5, its ECE at most 0.03 and its
cost a face the default's (`python -m bench.three_class`). 4.0.0 does not pass: balanced accuracy 0.937 / 0.934
against 3.0.0's 0.966 / 0.957, `mask_incorrect` recall 0.50 (14 of crowd-dev's 28) / 0.65 (24 of ILC val's 37)
at precision 0.52 / 0.73, ECE 0.045 / 0.064. It is the three-class choice
(`--model mask-mobilenetv2-0.35@4.0.0`): against 2.0.0, the same crowd-dev and a higher ILC val balanced
accuracy (0.938 / 0.916), fewer masked faces called incorrect (6 of 645 against 24), at 3.0.0's cost a face
(2.0.0: about 2x); 2.0.0 finds more of crowd-dev's incorrectly worn masks (18 of 28) at precision 0.39.
"""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _row(name: str, result: dict) -> str:
    """A table row of a with/without summary."""
    return (f"| {name} | {result['count']} | {_pct(result['accuracy'])} | {_pct(result['balanced_accuracy'])} | "
            f"{_pct(result['roc_auc'])} | {_pct(result['recall']['with_mask'])} / "
            f"{_pct(result['recall']['without_mask'])} |")


def _own_classes(metrics: dict) -> list[str]:
    """Recall per class and the confusion matrix of each data set measured on all of a model's classes."""
    lines = []
    for name, result in metrics.items():
        own = result.get("own_classes")
        if own:
            classes = list(own["recall"])
            lines += ["", f"{name}, all {len(classes)} classes ({own['count']} faces, balanced accuracy "
                      f"{_pct(own['balanced_accuracy'])}; rows: truth, columns: predicted):", "",
                      "| truth | " + " | ".join(classes) + " | recall |", "|---" * (len(classes) + 2) + "|"]
            lines += [f"| {c} | " + " | ".join(map(str, row)) + f" | {_pct(own['recall'][c])} |"
                      for c, row in zip(classes, own["confusion_matrix"])]
    return lines


def _default_mark(name: str, version: str, entry: dict) -> str:
    """What a version's heading says of defaults: only the one the runtime uses is "the default"."""
    if version != entry["default"]:
        return ""
    if name == DEFAULT_CLASSIFIER:
        return " (the default classifier)"
    return " (default version of this name)" if len(entry["versions"]) > 1 else ""


def render(manifest: dict) -> str:
    """The model card text for every classification model of `manifest`."""
    parts = [INTRO]
    for name, entry in sorted(manifest["models"].items()):
        if entry["task"] != "classification":
            continue
        for version, record in entry["versions"].items():
            default = _default_mark(name, version, entry)
            metrics = record["metrics"]
            test, crowd = metrics["training-data-test-split"], metrics.get("crowd-dev-faces")
            licences = record["training_data"].get("licences", {})
            lines = [
                f"## {name} {version}{default}",
                "",
                record["description"],
                "",
                f"- Architecture: MobileNetV2 alpha {record['architecture']['alpha']}, "
                f"{record['architecture']['head']}.",
                f"- Input: {record['input']['size']}x{record['input']['size']} {record['input']['colour']} "
                f"0..255, ONNX {record['input']['layout']['onnx']}, Keras {record['input']['layout']['keras']}; "
                f"normalisation {record['input']['normalisation']}; crop margin "
                f"{record['input']['crop']['margin']}, square {record['input']['crop']['square']}.",
                f"- Output: {record['output']}: {', '.join(record['classes'])}.",
                "- Files: " + ", ".join(f"`{f['file']}` ({f['size'] / 1e6:.1f} MB, sha256 `{f['sha256'][:12]}…`)"
                                        for f in record["files"].values()),
                f"- Training data: {', '.join(record['training_data']['datasets'])} "
                f"(images per split {record['training_data']['samples']}; excluded: "
                f"{', '.join(record['training_data']['excluded_files']) or 'none'})"
                + ("; licences: " + "; ".join(f"{k}: {v}" for k, v in licences.items()) if licences else "") + ".",
                f"- Recipe: {record['recipe']}; {record['training_seconds'] / 60:.1f} min on 2 CPU cores.",
                f"- Command: `{record['command']}`.",
                f"- Date: {record['date']}. Licence: {record['license']}.",
                "",
                "| data | faces/images | accuracy | balanced accuracy | ROC AUC | recall with / without |",
                "|---|---|---|---|---|---|",
                f"| held-out test split of the training data | {test['count']} | {_pct(test['accuracy'])} | "
                f"{_pct(test['balanced_accuracy'])} | {_pct(test['roc_auc'])} | "
                f"{_pct(test['recall']['with_mask'])} / {_pct(test['recall']['without_mask'])} |",
            ]
            for key, result in metrics.items():
                if key.endswith("-val-faces") or key == "covid19-facemask-test":
                    lines.append(_row(key, result))
            if crowd:
                lines.append(
                    f"| crowd-dev annotated faces | {crowd['count']} | {_pct(crowd['accuracy'])} | "
                    f"{_pct(crowd['balanced_accuracy'])} | {_pct(crowd['roc_auc'])} | "
                    f"{_pct(crowd['recall']['with_mask'])} / {_pct(crowd['recall']['without_mask'])} |"
                )
                for bucket, result in crowd["by_size"].items():
                    lines.append(f"| crowd-dev faces {bucket} px | {result['count']} | | "
                                 f"{_pct(result['balanced_accuracy'])} | | |")
                lines += ["", f"crowd-dev: {crowd['note']}."]
            lines += _own_classes(metrics)
            parts.append("\n".join(lines) + "\n")
    parts.append(_detectors(manifest))
    return "\n".join(parts)


DETECTORS_INTRO = """## Face detectors

The first stage of the pipeline. maskmodel publishes upstream detectors by pinned URL and sha256, and ships
one it converted itself: the SSD's ONNX (`ssd@2.0.0`), made from OpenCV's TensorFlow graph because OpenCV
5.1 has no TensorFlow importer; its source line names the command that remakes it
(`tests/test_opencv_capabilities.py` reruns it; `tests/test_opencv4.py` checks its boxes against the graph's
on OpenCV 4.12). A version marked "default" is the one a short name loads.
"""


def _detectors(manifest: dict) -> str:
    """The face-detector section: every version's files, licence and provenance."""
    lines = [DETECTORS_INTRO, "| model | short name | files | licence | source |", "|---|---|---|---|---|"]
    for name, entry in sorted(manifest["models"].items()):
        if entry["task"] != "face-detection":
            continue
        for version, record in entry["versions"].items():
            files = ", ".join(f"`{f['file']}`" + (f" ({f['size'] / 1e6:.1f} MB, sha256 `{f['sha256'][:12]}…`)"
                                                   if f.get("sha256") else " (inside OpenCV)")
                              for f in record["files"].values())
            mark = " (default)" if version == entry["default"] else ""
            lines.append(f"| {name} {version}{mark} | {entry['alias']} | {files} | {record['license']} | "
                         f"{record['source']} |")
    for name, entry in sorted(manifest["models"].items()):
        for version, record in entry["versions"].items():
            if entry["task"] == "face-detection" and record.get("metrics"):
                lines += ["", _fine_tuned_detector(f"{name} {version}", record)]
    return "\n".join(lines) + "\n"


def _fine_tuned_detector(title: str, record: dict) -> str:
    """A detector this project trained: what it is, its data and settings, and its figures beside the original's
    (`bench.detector` rows)."""
    data = record["training_data"]
    lines = [f"### {title}", "", record["description"], "",
             f"- Data: {'; '.join(data['train'])} ({data['train_photos']} photos, {data['train_faces']} faces); "
             f"never trained on {', '.join(data['val'])} nor on crowd-dev's held-back photos.",
             f"- Settings it comes with: {json.dumps(record.get('settings', {}))} (the score threshold that matches "
             "the original's precision on ILC test).",
             f"- Trained by `{record['command']}` on {record['date']}; {record['license']}.", "",
             "| set | detector | face AP50 | mAP50 | face AP30 | precision | recall < 16 px | ms a photo |",
             "|---|---|---|---|---|---|---|---|"]
    for set_name, rows in record["metrics"].items():
        for detector, row in rows.items():
            lines.append(f"| {set_name} ({row['images']} photos) | {detector} | {row['face_ap50']:.3f} | {row['map50']:.3f} | "
                         f"{row['face_ap30']:.3f} | {row['precision']:.3f} | {row['recall_small']:.3f} | "
                         f"{row['ms_per_photo']:.0f} |")
    if record.get("cost"):
        cost = record["cost"]
        lines += ["", f"Cost of one pass of the network ({cost.get('cpu') or 'CPU not recorded'}; "
                      f"{cost['backend_note']}):", "",
                  "| input (h x w) | multiply-adds | ms | centerface@1.0.0 ms |", "|---|---|---|---|"]
        lines += [f"| {row['input'][0]} x {row['input'][1]} | {row['gmac']:.2f} G | {row['ms']:.1f} | {row['original_ms']:.1f} |"
                  for row in cost["by_size"].values()]
    return "\n".join(lines)


def main() -> None:
    weights = Path("weights")
    (weights / "MODEL_CARD.md").write_text(render(json.loads((weights / "manifest.json").read_text())))


if __name__ == "__main__":
    main()
