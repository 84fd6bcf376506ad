"""Speed and memory of `maskmodel annotate` on crowd-dev, and `import maskmodel` time.

    python -m bench.annotate_speed [--runs 1:opencv,2:opencv,...] [--repeat N] [--out bench/results/annotate_speed.json]

Runs the installed `maskmodel annotate` command (as a user would) over the 150 crowd-dev photos for
each `--jobs` / `--backend` pair (plus extra flags), timing the whole command (start-up and model loading
included), its CPU seconds, and sampling the resident memory of the process tree every 20 ms; with
`--repeat N` the list runs N times round robin and each command's median run is reported. Speed ratios are against the old
default (`--face-detector yunet`, jobs 2, ONNX Runtime) run in the same command. `import maskmodel` time
is the median of 7 fresh interpreters minus that of an empty one.
"""

from __future__ import annotations

import argparse
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

IMAGES = ROOT.parent / "shared/datasets/crowd-dev/images"


OLD_DEFAULT = "--jobs 2 --backend onnxruntime --face-detector yunet"


def run_annotate(jobs: int, backend: str, extra: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    flags = ["--jobs", str(jobs), "--backend", backend, *extra]
    result = common.run_annotate(IMAGES, out / "o", *flags)
    shutil.rmtree(out)
    return result


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
    parser.add_argument("--runs", default="2:onnxruntime:--face-detector+yunet,2:opencv,2:onnxruntime,"
                        "2:onnxruntime:--preset+speed,2:onnxruntime:--preset+accuracy",
                        help="Comma-separated JOBS:BACKEND[:FLAGS] (FLAGS with '+' for spaces).")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Run the whole list this many times, round robin; report each command's median run.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/annotate_speed.json")
    args = parser.parse_args()
    specs = [(int(jobs), backend, extra[0].split("+") if extra else [])
             for jobs, backend, *extra in (spec.split(":") for spec in args.runs.split(","))]
    repeats = [[run_annotate(*spec) for spec in specs] for _ in range(args.repeat)]
    runs = [sorted((r[i] for r in repeats), key=lambda run: run["seconds"])[args.repeat // 2]
            for i in range(len(specs))]
    imported = import_seconds()
    reference = next((r for r in runs if r["flags"] == OLD_DEFAULT), None)
    lines = ["| command | images | faces | seconds (whole command) | images/s | faces/s | peak RSS (MiB) | CPU seconds |"
             + (" speed vs old default (wall / CPU time) |" if reference else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if reference else "")]
    for r in runs:
        lines.append(f"| `maskmodel annotate crowd-dev/images {r['flags']}` | {r['images']} | {r['faces']} | "
                     f"{r['seconds']:.1f} | {r['images_per_second']:.1f} | {r['faces_per_second']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} | {r['cpu_seconds']:.1f} |"
                     + (f" {r['images_per_second'] / reference['images_per_second']:.2f}x / "
                        f"{reference['cpu_seconds'] / r['cpu_seconds']:.2f}x |" if reference else ""))
    table = "\n".join(lines) + f"\n\n`import maskmodel`: {imported * 1000:.0f} ms"
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    common.publish(table, {"runs": runs, "import_seconds": imported}, args.out)


if __name__ == "__main__":
    main()
