"""Generate the documentation's example images from the real pipeline (run before `mkdocs build`).

    python docs/make_examples.py

Writes `docs/img/generated/` (git-ignored: photos of people from the datasets are not committed):
an annotated crowd-dev photo, a Markdown excerpt of its report rows, and precision-recall curves of
the default pipeline on 30 crowd-dev photos.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maskmodel.batch.run import AnnotateSettings, annotate  # noqa: E402

PHOTO = ROOT.parent / "shared/datasets/crowd-dev/images/maksssksksss148.png"
TARGET = ROOT / "docs/img/generated"
COLUMNS = ("path", "status", "face", "x1", "y1", "x2", "y2", "score", "label", "p_with_mask")


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp())
    annotate([PHOTO], AnnotateSettings(out_dir=str(work)))
    shutil.copy(work / PHOTO.name, TARGET / "annotated.png")
    with open(work / "report.csv", newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))[:5]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    (TARGET / "report-excerpt.txt").write_text("\n".join(lines) + "\n")
    shutil.rmtree(work)
    pr_curves()
    print(f"wrote {TARGET}")


def pr_curves() -> None:
    """PR curves of the default pipeline on the first 30 crowd-dev photos (`maskmodel evaluate detect`)."""
    import cv2

    from bench.common import CROWD_DEV_OVERLAP
    from maskmodel.evaluation.annotations import read_voc_folder
    from maskmodel.evaluation.evaluate import evaluate_detections
    from maskmodel.io.imageio import read_image
    from maskmodel.pipeline import MaskDetector
    from maskmodel.outputs.plots import curve_plot

    images = read_voc_folder(PHOTO.parent.parent, CROWD_DEV_OVERLAP)[:30]
    detector = MaskDetector()
    result = evaluate_detections(images, [detector.detect(read_image(i.image_path)) for i in images])
    curves = {name: (c["recall"], c["precision"]) for name, c in result["curves"].items()}
    cv2.imwrite(str(TARGET / "pr_curves.png"),
                curve_plot(curves, "crowd-dev, first 30 photos: default pipeline", "recall", "precision"))


if __name__ == "__main__":
    main()
