"""Three-class classifiers against the two-class default, by issue 38's decision rule.

    python -m bench.three_class [--models NAME_OR_RUN,...] [--baseline mask-mobilenetv2-0.35@3.0.0]
                                [--out bench/results/three_class.json]

On the annotated faces of crowd-dev (the two photos shared with the training data left out) and of ILC val
(`bench.common.ilc_part("val")`), classified from their boxes (`evaluate_annotated_faces`):
- with/without balanced accuracy, strict: a with_mask or without_mask face called `mask_incorrect` is an error
  (for a two-class model, the plain balanced accuracy);
- `mask_incorrect` recall and precision over the model's own classes, and the confusion matrix;
- expected calibration error (ECE, 15 bins) of the top class over the model's own classes;
- ms a face (batches of 32 crops, the models in turn), and its ratio to the baseline's.
A three-class model passes the rule when, on both sets, its strict balanced accuracy is at most 0.005 below the
baseline's, its `mask_incorrect` recall is at least 0.65 at precision at least 0.5, its ECE at most 0.03, and
its cost a face at most the baseline's (within 10 % timing noise).
Prints a Markdown table and the confusion matrices, and writes the JSON.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from bench import common
from bench.classifier import interleaved_ms_per_face
from bench.pipeline import load_sets
from maskmodel.evaluation.evaluate import TWO_CLASSES, evaluate_annotated_faces
from maskmodel.io.imageio import read_image
from maskmodel.loading import load

INCORRECT = "mask_incorrect"


def strict_balanced_accuracy(report: dict, classes: list[str]) -> float:
    """Mean recall of with_mask and without_mask over the model's own predictions (any other class is wrong)."""
    matrix = np.array(report["confusion_matrix"])
    recalls = [matrix[i, i] / matrix[i].sum() for i in (classes.index(c) for c in TWO_CLASSES) if matrix[i].sum()]
    return float(np.mean(recalls))


def measure(model, images: list) -> dict:
    """The rule's numbers of one model on one set."""
    classes = list(model.contract.classes)
    report = evaluate_annotated_faces(model, images)
    incorrect = report["per_class"].get(INCORRECT)
    return {"strict_balanced_accuracy": strict_balanced_accuracy(report, classes),
            "recall": {c: report["per_class"][c]["recall"] for c in classes},
            "incorrect_recall": incorrect["recall"] if incorrect else None,
            "incorrect_precision": incorrect["precision"] if incorrect else None,
            "incorrect_faces": incorrect["support"] if incorrect else None,
            "ece": report["ece"], "count": report["count"], "classes": classes,
            "confusion_matrix": report["confusion_matrix"]}


def verdict(result: dict, baseline: dict, sets: list[str]) -> list[str]:
    """The rule's failures (empty: the model passes)."""
    failures = []
    for name in sets:
        mine, base = result[name], baseline[name]
        if mine["strict_balanced_accuracy"] < base["strict_balanced_accuracy"] - 0.005:
            failures.append(f"{name}: balanced accuracy {mine['strict_balanced_accuracy']:.3f} < "
                            f"{base['strict_balanced_accuracy']:.3f} - 0.005")
        if mine["incorrect_recall"] is None or mine["incorrect_recall"] < 0.65 or mine["incorrect_precision"] < 0.5:
            failures.append(f"{name}: mask_incorrect recall/precision {mine['incorrect_recall'] or 0:.3f} / "
                            f"{mine['incorrect_precision'] or 0:.3f} (needs >= 0.65 / >= 0.5)")
        if mine["ece"] > 0.03:
            failures.append(f"{name}: ECE {mine['ece']:.3f} > 0.03")
    if result["ms_per_face"] > baseline["ms_per_face"] * 1.1:
        failures.append(f"cost {result['ms_per_face']:.2f} ms a face > {baseline['ms_per_face']:.2f}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mask-mobilenetv2-0.35@2.0.0,mask-mobilenetv2-0.35@4.0.0")
    parser.add_argument("--baseline", default="mask-mobilenetv2-0.35@3.0.0")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/three_class.json")
    args = parser.parse_args()
    sets = load_sets(["crowd-dev", "ilc-val"])
    names = [args.baseline, *args.models.split(",")]
    models = {name: load(name) for name in names}
    photo = read_image(sets["crowd-dev"][0].image_path)  # 32 crops of one photo, as bench.classifier times them
    cost = interleaved_ms_per_face(models, photo, np.array([[10, 10, 60, 60]] * 32, dtype=np.float32))
    results = {name: {**{s: measure(model, images) for s, images in sets.items()}, "ms_per_face": cost[name]}
               for name, model in models.items()}
    lines = ["| model | crowd-dev balanced acc. (strict) | ILC val balanced acc. (strict) | mask_incorrect recall / "
             "precision crowd-dev | ... ILC val | ECE crowd-dev / ILC val | ms a face (ratio) | rule |",
             "|---|---|---|---|---|---|---|---|"]
    matrices = []
    for name, r in results.items():
        c, i = r["crowd-dev"], r["ilc-val"]
        failures = [] if name == args.baseline else verdict(r, results[args.baseline], list(sets))
        r["rule_failures"] = failures
        incorrect = (lambda m: "-" if m["incorrect_recall"] is None else
                     f"{m['incorrect_recall']:.3f} / {m['incorrect_precision']:.3f} ({m['incorrect_faces']} faces)")
        rule = "baseline" if name == args.baseline else ("passes" if not failures else "; ".join(failures))
        lines.append(f"| {name} | {c['strict_balanced_accuracy']:.3f} | {i['strict_balanced_accuracy']:.3f} | "
                     f"{incorrect(c)} | {incorrect(i)} | {c['ece']:.3f} / {i['ece']:.3f} | {r['ms_per_face']:.2f} "
                     f"({r['ms_per_face'] / results[args.baseline]['ms_per_face']:.2f}x) | {rule} |")
        for set_name in sets:
            matrix = r[set_name]["confusion_matrix"]
            classes = r[set_name]["classes"]
            matrices.append(f"{name}, {set_name} (rows: true, columns: predicted {', '.join(classes)}):\n"
                            + "\n".join(f"    {label:>14}: {row}" for label, row in zip(classes, matrix)))
    table = "\n".join(lines) + "\n\n" + "\n\n".join(matrices)
    common.publish(table, {"machine": platform.machine(), "results": results}, args.out)


if __name__ == "__main__":
    main()
