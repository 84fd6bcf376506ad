"""The speed/accuracy frontier of `maskmodel annotate` against the AIZOO peer, like for like.

    python -m bench.frontier [--photos 600] [--configs NAME,...] [--copies NAME,...] [--repeat N] [--accuracy-from JSON]
                             [--out bench/results/frontier.json] [--plot docs/img/frontier.png]

Speed: each configuration is the whole installed command (`maskmodel annotate DIR --out X --quiet`, no
`--jobs` flag unless the configuration names one) over `--photos` photos of `../shared/datasets` (all of
crowd-dev, then ilc-2021 in name order: crowd photos like crowd-dev, start-up amortised as in real batches),
copied into a temporary folder. Two comparisons, each like for like: report only (`--dry-run`) against the
peer's loop that writes no images (`run.py`), and annotated copies against the peer writing its copies
(`run.py --save`). The peer is timed whole (its process, start-up included) right before and after each
maskmodel run; the ratio is maskmodel's images/s over the mean of those two.
Accuracy: face AP50 and mAP50 of the same configuration on crowd-dev's held-back part (76 photos: the detectors
trained here saw the other half, `bench.detector.crowd_dev_held_back`) and ILC val (`bench.common.ilc_part("val")`),
and the peer's on the same crowd-dev photos from its predictions.
Prints a Markdown table, writes the JSON and a plot (images/s ratio against crowd-dev mAP50).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench import common
from bench.detector import crowd_dev_held_back
from bench.pipeline import load_sets
from maskmodel.detect.detector_config import DetectorConfig
from maskmodel.evaluation.evaluate import evaluate_detections
from maskmodel.io.imageio import read_image
from maskmodel.pipeline import Face, MaskDetector

AIZOO = common.SHARED / "peers/aizoo/run.py"
OPENCV4 = ROOT / ".cache/opencv4"

# name -> the annotate flags (beyond --out and --quiet); each is also evaluated through the same DetectorConfig
CONFIGS = {
    "--preset fast": ["--preset", "fast"],
    "--preset speed": ["--preset", "speed"],
    "default": [],
    "default with --jobs 1": ["--jobs", "1"],
    "--preset accuracy": ["--preset", "accuracy"],
    "centerface-s 384": ["--face-detector", "centerface-s", "--scales", "384", "--first-pass", "0"],
    "centerface-s 512": ["--face-detector", "centerface-s", "--scales", "512", "--first-pass", "0"],
    "centerface-s 640": ["--face-detector", "centerface-s", "--scales", "640", "--first-pass", "0"],
    "centerface-s 384 then 800": ["--face-detector", "centerface-s"],
    "centerface-s 384 then 1024": ["--face-detector", "centerface-s", "--scales", "1024"],
    "centerface 384 then 640": ["--face-detector", "centerface", "--scales", "640"],
    "centerface 640": ["--scales", "640", "--first-pass", "0"],
    "centerface 800 (previous default)": ["--scales", "800", "--first-pass", "0"],
    "centerface 1024": ["--scales", "1024", "--first-pass", "0"],
    "centerface 640 mirrored": ["--scales", "640", "--flip", "--first-pass", "0"],
    "yunet 320": ["--face-detector", "yunet", "--scales", "320"],
    "yunet 640": ["--face-detector", "yunet", "--scales", "640"],
    "yunet 1024": ["--face-detector", "yunet", "--scales", "1024"],
}
PRESETS = ("--preset fast", "--preset speed", "default", "--preset accuracy")


def detector_config(flags: list[str]) -> DetectorConfig:
    """The `DetectorConfig` that `maskmodel annotate` builds from these flags (parsed by the command itself)."""
    from maskmodel.cli.annotate import annotate
    from maskmodel.cli.detector import detector_settings

    p = annotate.make_context("annotate", [".", "--out", "unused", *flags]).params
    return detector_settings(p["face_detector"], p["preset"], p["threshold"], p["scales"], p["flip"], p["nms_iou"],
                             p["box_adjust"], p["first_pass"])["detector"]


def accuracy(configs: dict, sets: dict) -> dict:
    """Face AP50 and mAP50 per configuration and set."""
    results = {}
    for name, flags in configs.items():
        pipeline = MaskDetector(detector_config(flags))
        results[name] = {}
        for set_name, images in sets.items():
            predictions = [pipeline.detect(read_image(image.image_path)).faces for image in images]
            metrics = evaluate_detections(images, predictions)
            results[name][set_name] = {"face_ap50": metrics["face_ap50"], "map50": metrics["map50"]}
        print(f"accuracy: {name}", file=sys.stderr)
    return results


def peer_accuracy(images: list, folder: Path) -> dict:
    """The AIZOO peer's face AP50 and mAP50 on annotated `images` (its predictions at its AP threshold)."""
    for image in images:
        shutil.copy(image.image_path, folder / image.image_path.name)
    predictions = folder.parent / "aizoo-preds.csv"
    subprocess.run([sys.executable, str(AIZOO), str(folder), "--out", str(predictions)], check=True,
                   env={**os.environ, "PYTHONPATH": str(OPENCV4)}, capture_output=True)
    faces: dict[str, list] = {}
    with open(predictions, newline="") as file:
        for row in csv.DictReader(file):
            box = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            probability = float(row["label_prob"])
            other = "without_mask" if row["label"] == "with_mask" else "with_mask"
            faces.setdefault(row["image"], []).append(Face(box, float(row["det_score"]), row["label"],
                                                           {row["label"]: probability, other: 1 - probability}))
    metrics = evaluate_detections(images, [faces.get(image.image_path.name, []) for image in images])
    return {"face_ap50": metrics["face_ap50"], "map50": metrics["map50"]}


def time_peer(photos: Path, save: bool) -> float:
    """Images/s of the AIZOO peer's whole process over `photos` (with its copies when `save`)."""
    with tempfile.TemporaryDirectory(prefix="bench-aizoo-") as folder:
        command = [sys.executable, str(AIZOO), str(photos), "--out", f"{folder}/preds.csv"]
        started = time.perf_counter()
        subprocess.run(command + (["--save", f"{folder}/copies"] if save else []), check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(OPENCV4)})
        seconds = time.perf_counter() - started
    return len(list(photos.iterdir())) / seconds


def timed_in_turn(runs: dict[str, list[str]], photos: Path, copies: bool, rounds: int = 1) -> dict[str, dict]:
    """Each configuration's run with the peer timed right before and after it (peer, run, peer, run, ..., peer:
    each peer run serves the configurations on both sides), the list `rounds` times: the median run's images/s,
    first copy and memory, and the median of its per-round ratios to the mean of its two peer runs."""
    extra = [] if copies else ["--dry-run"]
    peer_before, measured = time_peer(photos, copies), {name: [] for name in runs}
    for _ in range(rounds):
        for name, flags in runs.items():
            with tempfile.TemporaryDirectory(prefix="bench-frontier-") as folder:
                run = common.run_annotate(photos, Path(folder) / "out", *flags, *extra)
            peer_after = time_peer(photos, copies)
            peer = (peer_before + peer_after) / 2
            measured[name].append({**run, "peer_images_per_second": peer, "ratio": run["images_per_second"] / peer})
            print(f"speed ({'copies' if copies else 'report only'}): {name} {measured[name][-1]['ratio']:.2f}x",
                  file=sys.stderr)
            peer_before = peer_after
    results = {}
    for name, runs_of_name in measured.items():
        ordered = sorted(runs_of_name, key=lambda r: r["ratio"])
        results[name] = {**ordered[len(ordered) // 2], "ratios": [r["ratio"] for r in runs_of_name]}
    return results


def speed_photos(count: int, folder: Path) -> Path:
    """`count` photos copied into `folder`: crowd-dev first, then ilc-2021."""
    sources = sorted((common.SHARED / "datasets/crowd-dev/images").iterdir())
    sources += sorted((common.SHARED / "datasets/ilc-2021/images").iterdir())
    for index, source in enumerate(sources[:count]):
        shutil.copy(source, folder / f"{index:04d}{source.suffix.lower()}")
    return folder


def plot(rows: list[dict], peer: dict, path: Path) -> None:
    """Images/s ratio to the peer (report only) against crowd-dev mAP50, one point per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=110)
    for index, row in enumerate(rows):
        preset = row["name"] in PRESETS
        axes.scatter(row["map50"], row["ratio"], s=60 if preset else 25, color="tab:blue" if preset else "tab:gray",
                     zorder=3)
        axes.annotate(row["name"], (row["map50"], row["ratio"]), textcoords="offset points",
                      xytext=(5, 4) if preset or index % 2 else (5, -11),
                      fontsize=8, fontweight="bold" if preset else "normal")
    axes.scatter(peer["map50"], 1.0, s=80, marker="*", color="tab:red", zorder=4)
    axes.annotate("AIZOO peer", (peer["map50"], 1.0), textcoords="offset points", xytext=(5, -12), color="tab:red",
                  fontsize=9)
    axes.axhline(1.0, color="tab:red", linewidth=0.6, linestyle="--")
    axes.set_xlabel("crowd-dev held-back mAP50 (with_mask, without_mask)")
    axes.set_ylabel("images/s ratio to the AIZOO peer (report only, same run)")
    axes.set_title("maskmodel annotate: speed against accuracy")
    axes.grid(alpha=0.3)
    axes.margins(x=0.15, y=0.1)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=600)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="Comma-separated names from CONFIGS.")
    parser.add_argument("--copies", default=",".join(PRESETS),
                        help="Configurations also timed with annotated copies (against the peer's copies).")
    parser.add_argument("--repeat", type=int, default=1,
                        help="Rounds over the configurations; each reports its median round (ratios drift between "
                             "rounds on a shared machine).")
    parser.add_argument("--accuracy-from", type=Path,
                        help="Take the accuracy of the configurations (and the peer's) from this earlier JSON of this "
                             "script (accuracy does not vary between runs; speed does).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/frontier.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/img/frontier.png")
    args = parser.parse_args()
    configs = {name: CONFIGS[name] for name in args.configs.split(",")}
    if args.accuracy_from:
        earlier = json.loads(args.accuracy_from.read_text())
        peer, quality = earlier["peer"], earlier["accuracy"]
    else:
        sets = {"crowd-dev": crowd_dev_held_back(), **load_sets(["ilc-val"])}
        with tempfile.TemporaryDirectory(prefix="bench-frontier-") as folder:
            (Path(folder) / "crowd").mkdir()
            peer = peer_accuracy(sets["crowd-dev"], Path(folder) / "crowd")
        quality = accuracy({n: f for n, f in configs.items() if "--jobs" not in f}, sets)
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as folder:
        photos = speed_photos(args.photos, Path(folder))
        report = timed_in_turn(configs, photos, copies=False, rounds=args.repeat)
        copies = timed_in_turn({n: f for n, f in configs.items() if n in args.copies.split(",")}, photos, copies=True,
                               rounds=args.repeat)
    speeds = {name: {"report": report[name], **({"copies": copies[name]} if name in copies else {})} for name in configs}
    lines = ["| configuration | flags | images/s report only (ratio to AIZOO) | images/s with copies (ratio) | "
             "crowd-dev held-back face AP50 / mAP50 | ILC val face AP50 / mAP50 | first copy s | peak MiB |",
             "|---|---|---|---|---|---|---|---|"]
    rows = []
    for name, flags in configs.items():
        measured = quality.get(name) or quality["default"]  # --jobs changes speed only
        report, copies = speeds[name]["report"], speeds[name].get("copies")
        lines.append(f"| {name} | `{' '.join(flags) or '(none)'}` | {_speed(report)} | "
                     + (_speed(copies) if copies else "") + " | "
                     f"{measured['crowd-dev']['face_ap50']:.3f} / {measured['crowd-dev']['map50']:.3f} | "
                     f"{measured['ilc-val']['face_ap50']:.3f} / {measured['ilc-val']['map50']:.3f} | "
                     + (f"{copies['first_output_seconds']:.2f}" if copies and copies["first_output_seconds"] else "")
                     + f" | {report['peak_rss_mib']:.0f} |")
        rows.append({"name": name, "ratio": report["ratio"], "map50": measured["crowd-dev"]["map50"]})
    peer_ips = statistics.mean(s["report"]["peer_images_per_second"] for s in speeds.values())
    lines.append(f"| AIZOO peer | `run.py` | {peer_ips:.1f} (1.00x) | | {peer['face_ap50']:.3f} / {peer['map50']:.3f} "
                 "| | | |")
    table = "\n".join(lines)
    plot(rows, peer, args.plot)
    common.publish(table, {"photos": args.photos, "machine": platform.machine(), "cpu": _cpu_name(),
                           "peer": peer, "accuracy": quality, "speed": speeds}, args.out)


def _speed(run: dict) -> str:
    """Images/s and the ratio to the peer, with the range of the rounds' ratios when there were several."""
    spread = f"; rounds {min(run['ratios']):.2f}-{max(run['ratios']):.2f}x" if len(run["ratios"]) > 1 else ""
    return f"{run['images_per_second']:.1f} ({run['ratio']:.2f}x{spread})"


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
