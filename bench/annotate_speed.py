"""Speed of the whole `maskmodel annotate` command on crowd-dev against the AIZOO peer, per-stage cost, memory,
and `import maskmodel` time.

    python -m bench.annotate_speed [--runs 2:auto,2:opencv,...] [--repeat N] [--stage-photos N]
                                   [--out bench/results/annotate_speed.json]

Runs the installed `maskmodel annotate` command (as a user would) over the 150 crowd-dev photos for each
`--jobs` / `--backend` pair (plus extra flags), timing the whole command (start-up and model loading
included), its CPU seconds, the seconds until its first annotated copy is written, and sampling the
resident memory of the process tree (all processes, and the largest one: the main process or a worker) every 20 ms. The AIZOO
peer (`../shared/peers/aizoo/run.py`: its SSD through OpenCV 4.12's DNN, from `.cache/opencv4`, one
process) runs on the same photos in the same round: its whole process is timed the same way, and its
own images/s (its loop only, models loaded) is kept too. With `--repeat N` the list runs N times round
robin; each command's ratio to the peer is the median of its per-round ratios (load from other jobs on a
shared machine drifts between rounds, less within one), beside its median images/s.

The per-stage table times one worker's work in this process (one thread, as each `--jobs` worker runs):
decode, detect, classify, draw and encode (PNG, as the annotated copies of PNG inputs), in ms per photo,
the configurations taking turns photo by photo. `import maskmodel` time is the median of 7 fresh
interpreters minus that of an empty one.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench import common

IMAGES = ROOT.parent / "shared/datasets/crowd-dev/images"
AIZOO = ROOT.parent / "shared/peers/aizoo/run.py"
OPENCV4 = ROOT / ".cache/opencv4"
DEFAULT_RUNS = ("2:auto,2:opencv,2:onnxruntime,2:auto:--preset+speed,2:auto:--preset+accuracy")
STAGE_CONFIGS = {"--preset fast (auto)": ("fast", "auto"), "--preset speed (auto)": ("speed", "auto"),
                 "default (auto)": ("default", "auto"), "default, --backend opencv": ("default", "opencv"),
                 "--preset accuracy (auto)": ("accuracy", "auto")}


def run_annotate(jobs: int, backend: str, extra: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    flags = ["--jobs", str(jobs), "--backend", backend, *extra]
    result = common.run_annotate(IMAGES, out / "o", *flags)
    shutil.rmtree(out)
    return result


def run_aizoo() -> dict | None:
    """The AIZOO peer over the same photos, in one process: whole-process wall and CPU seconds, and the
    images/s it prints for its loop."""
    if not (AIZOO.is_file() and OPENCV4.is_dir()):
        return None
    with tempfile.TemporaryDirectory(prefix="bench-aizoo-") as folder:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(AIZOO), str(IMAGES), "--out", f"{folder}/preds.csv"],
                                env={**os.environ, "PYTHONPATH": str(OPENCV4)}, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"aizoo: (\d+) images, .*?([\d.]+) images/s", result.stdout)
    if result.returncode or not found:
        print(f"AIZOO peer failed: {result.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    images = int(found.group(1))
    return {"flags": "AIZOO peer (run.py, OpenCV 4.12, one process)", "seconds": seconds, "images": images,
            "images_per_second": images / seconds, "loop_images_per_second": float(found.group(2)),
            "cpu_seconds": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}


def stage_table(photos: int) -> tuple[str, dict]:
    """ms per photo per stage, in this process on one thread, the configurations taking turns photo by photo."""
    import cv2

    from maskmodel.detect.detector_config import DetectorConfig
    from maskmodel.drawing.draw import draw_faces
    from maskmodel.io.imageio import encode_image, read_image
    from maskmodel.pipeline import MaskDetector

    cv2.setNumThreads(1)
    detectors = {name: MaskDetector(DetectorConfig.preset(preset), backend=backend)
                 for name, (preset, backend) in STAGE_CONFIGS.items()}
    files = sorted(IMAGES.glob("*.png"))[:photos]
    stages = ("decode", "detect", "classify", "draw", "encode")
    totals = {name: dict.fromkeys(stages, 0.0) for name in detectors}
    faces = dict.fromkeys(detectors, 0)
    for detector in detectors.values():  # warm-up: first compilations, first shapes
        detector.detect(read_image(files[0]))
    for path in files:
        for name, detector in detectors.items():
            clock = [time.perf_counter()]
            image = read_image(path)
            clock.append(time.perf_counter())
            boxes, landmarks = detector.face_detector.detect_with_landmarks(image)
            clock.append(time.perf_counter())
            probabilities = detector.classifier.predict_crops(detector.classifier.crops(image, boxes[:, :4]))
            clock.append(time.perf_counter())
            found = [detector._face(row, p, marks) for row, p, marks in
                     zip(detector._reported(boxes, image.shape), probabilities, landmarks)]
            annotated = draw_faces(image, found, detector.classes)
            clock.append(time.perf_counter())
            encode_image(annotated, ".png")
            clock.append(time.perf_counter())
            for stage, start, end in zip(stages, clock, clock[1:]):
                totals[name][stage] += end - start
            faces[name] += len(boxes)
    lines = ["| configuration (one thread) | " + " | ".join(f"{s} ms" for s in stages) + " | total ms | faces / photo | runtime |",
             "|---|" + "---|" * (len(stages) + 3)]
    data = {}
    for name, detector in detectors.items():
        per = {s: totals[name][s] * 1000 / len(files) for s in stages}
        runtime = f"{detector.face_detector.backend} {detector.face_detector.precision}"
        data[name] = {**per, "faces_per_photo": faces[name] / len(files), "runtime": runtime}
        lines.append(f"| {name} | " + " | ".join(f"{per[s]:.1f}" for s in stages)
                     + f" | {sum(per.values()):.1f} | {faces[name] / len(files):.1f} | {runtime} |")
    return "\n".join(lines), data


def import_seconds() -> float:
    def median_run(code: str) -> float:
        timings = []
        for _ in range(7):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    return median_run("import maskmodel") - median_run("pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=DEFAULT_RUNS,
                        help="Comma-separated JOBS:BACKEND[:FLAGS] (FLAGS with '+' for spaces).")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Run the whole list this many times, round robin; report each command's median run.")
    parser.add_argument("--stage-photos", type=int, default=40, help="Photos of the per-stage table (0: none).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/annotate_speed.json")
    args = parser.parse_args()
    specs = [(int(jobs), backend, extra[0].split("+") if extra else [])
             for jobs, backend, *extra in (spec.split(":") for spec in args.runs.split(","))]
    rounds = []
    for _ in range(args.repeat):
        peer = run_aizoo()
        rounds.append((peer, [run_annotate(*spec) for spec in specs]))
    peers = [peer for peer, _ in rounds if peer]
    runs = []
    for index in range(len(specs)):
        mine = [r[index] for _, r in rounds]
        run = dict(sorted(mine, key=lambda r: r["seconds"])[len(mine) // 2])
        if peers:
            paired = [(peer, r[index]) for peer, r in rounds if peer]
            run["vs_aizoo"] = statistics.median(r["images_per_second"] / p["images_per_second"] for p, r in paired)
            run["vs_aizoo_loop"] = statistics.median(r["images_per_second"] / p["loop_images_per_second"]
                                                     for p, r in paired)
            run["vs_aizoo_cpu"] = statistics.median(p["cpu_seconds"] / r["cpu_seconds"] for p, r in paired)
        runs.append(run)
    peer = sorted(peers, key=lambda p: p["seconds"])[len(peers) // 2] if peers else None
    lines = ["| command | images | faces | seconds (whole command) | first annotated copy (s) | images/s | CPU seconds "
             "| peak RSS, all processes / largest (MiB) |"
             + (" vs AIZOO: images/s (whole process) / its loop only / CPU time |" if peer else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if peer else "")]
    if peer:
        lines.append(f"| AIZOO peer: `run.py crowd-dev/images` (OpenCV 4.12, one process) | {peer['images']} | - | "
                     f"{peer['seconds']:.1f} | - | {peer['images_per_second']:.1f} (its loop: "
                     f"{peer['loop_images_per_second']:.1f}) | {peer['cpu_seconds']:.1f} | - | 1.00x |")
    for r in runs:
        first = "-" if r["first_output_seconds"] is None else f"{r['first_output_seconds']:.2f}"
        lines.append(f"| `maskmodel annotate crowd-dev/images {r['flags']}` | {r['images']} | {r['faces']} | "
                     f"{r['seconds']:.1f} | {first} | {r['images_per_second']:.1f} | {r['cpu_seconds']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} / {r['peak_process_rss_mib']:.0f} |"
                     + (f" {r['vs_aizoo']:.2f}x / {r['vs_aizoo_loop']:.2f}x / {r['vs_aizoo_cpu']:.2f}x |" if peer else ""))
    table = "\n".join(lines)
    stages, stage_data = stage_table(args.stage_photos) if args.stage_photos else ("", {})
    imported = import_seconds()
    table += (f"\n\nPer stage, ms per photo ({args.stage_photos} crowd-dev photos, one process):\n\n{stages}"
              if stages else "") + f"\n\n`import maskmodel`: {imported * 1000:.0f} ms"
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average before the run {os.getloadavg()[0]:.1f}")
    common.publish(table, {"runs": runs, "aizoo": peers, "stages": stage_data, "import_seconds": imported}, args.out)


if __name__ == "__main__":
    main()
