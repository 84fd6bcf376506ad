"""Local `--jobs 2` vs `--engine ray --num-cpus 2` on crowd-dev, and the per-image cost for projections.

    python -m bench.ray_overhead [--out bench/results/ray.json]

Both runs are the whole `maskmodel annotate` command over the 150 crowd-dev photos on this machine
(Ray's start-up included). The per-image CPU cost (seconds x CPUs / images) feeds docs/scaling.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench import common

IMAGES = ROOT.parent / "shared/datasets/crowd-dev/images"


def timed(*flags: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    result = common.run_annotate(IMAGES, out / "out", *flags)
    shutil.rmtree(out)
    return {**result, "cpu_seconds_per_image": 2 * result["seconds"] / result["images"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ray.json")
    args = parser.parse_args()
    local, ray = timed("--jobs", "2"), timed("--engine", "ray", "--num-cpus", "2")
    lines = ["| command | seconds (whole command) | images/s | CPU-seconds per image | ratio vs local |", "|---|---|---|---|---|"]
    for r in (local, ray):
        lines.append(f"| `maskmodel annotate crowd-dev/images -q {r['flags']}` | {r['seconds']:.1f} | "
                     f"{r['images_per_second']:.1f} | {r['cpu_seconds_per_image']:.3f} | "
                     f"{r['images_per_second'] / local['images_per_second']:.2f}x |")
    common.publish("\n".join(lines), {"local": local, "ray": ray}, args.out)


if __name__ == "__main__":
    main()
