"""`weights/MODEL_CARD.md`, rendered from `weights/manifest.json` so that its numbers cannot drift."""

from __future__ import annotations

from pathlib import Path

INTRO = """# Model card: maskmodel face-mask classifiers

Generated from `weights/manifest.json` by `python -m maskmodel.training.model_card` (run by the publish
step); edit the text in `maskmodel/training/model_card.py`, never the numbers here.

## What they do
Classify a face crop as `with_mask` or `without_mask`. They are the second stage of the maskmodel
pipeline: a face detector (YuNet by default) finds faces, each face box is cut by the project's one crop
function (square, margin on every side, border replicated, area/bilinear resize) and classified.

## Intended use and limits
- Counting mask wearing in photos and video of public places, privacy-safe reporting (`--blur-faces`),
  research. Not for decisions about individual people.
- Trained on face photos from the web (covid19-facemask, real-facemask); a part of covid19-facemask has
  synthetic (pasted) masks. Measured on real street and crowd photos (crowd-dev) and reported by face size:
  faces under 16 px are guesses more often, and masks worn incorrectly are not a class (they are left out
  of the two-class metrics).
- Errors seen on crowd-dev: unmasked faces that are dark, turned away, or cut by a head in front are the
  most frequent mistakes (called `with_mask`).

## How they were trained
Detector-aligned crops (YuNet, longer side 640 px; the whole image when no face is found), duplicate-aware
splits (exact and perceptual-hash near duplicates never straddle train/val/test), augmentation for real
photos (flips, small rotations/scales/shifts, colour and low-light jitter, blur, JPEG artefacts, occluding
heads pasted over an edge, and low-resolution simulation: faces shrunk to 8-48 px and enlarged again),
ImageNet MobileNetV2, phase 1 head only on cached backbone features, phase 2 top blocks unfrozen at a low
learning rate, early stopping on validation loss.
"""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def render(manifest: dict) -> str:
    """The model card text for every classification model of `manifest`."""
    parts = [INTRO]
    for name, entry in sorted(manifest["models"].items()):
        if entry["task"] != "classification":
            continue
        for version, record in entry["versions"].items():
            default = " (default)" if version == entry["default"] else ""
            metrics = record["metrics"]
            test, crowd = metrics["training-data-test-split"], metrics.get("crowd-dev-faces")
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
                f"{', '.join(record['training_data']['excluded_files']) or 'none'}).",
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
            parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def main() -> None:
    import json

    weights = Path("weights")
    (weights / "MODEL_CARD.md").write_text(render(json.loads((weights / "manifest.json").read_text())))


if __name__ == "__main__":
    main()
