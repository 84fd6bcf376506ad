"""The process/thread plan of `maskmodel annotate`: one process running its networks on every core (`--jobs 1`)
against one process per core, each on one thread (`--jobs N`), by batch size.

    python -m bench.jobs_plan [--sizes 16,32,64,600] [--rounds 2] [--out bench/results/jobs_plan.json]

For each batch size (crowd-dev photos first, then ilc-2021, as `bench.frontier` copies them), the whole installed
command with annotated copies, `--jobs 1` and `--jobs CPUS` taking turns, `--rounds` times; the ratio is the
median of the per-round ratios of images/s (start-up included, as a user waits for it). It decides where
`--jobs auto` starts a process per CPU (`maskmodel.batch.engines.AUTO_MIN_PHOTOS`).
Prints a Markdown table and writes the JSON.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench import common
from bench.frontier import _cpu_name, speed_photos
from maskmodel.batch.engines import available_cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,32,64,600")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/jobs_plan.json")
    args = parser.parse_args()
    cpus = available_cpus()
    plans = {"--jobs 1": ["--jobs", "1"], f"--jobs {cpus}": ["--jobs", str(cpus)]}
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
            photos = speed_photos(size, Path(folder))
            runs = {name: [] for name in plans}
            for _ in range(args.rounds):
                for name, flags in plans.items():
                    with tempfile.TemporaryDirectory(prefix="bench-jobs-out-") as out:
                        runs[name].append(common.run_annotate(photos, Path(out) / "o", *flags))
        one, many = runs.values()
        results[size] = {"runs": runs, "ratio": statistics.median(
            m["images_per_second"] / o["images_per_second"] for o, m in zip(one, many))}
    lines = [f"| photos | --jobs 1 images/s | --jobs {cpus} images/s | ratio --jobs {cpus} / --jobs 1 |",
             "|---|---|---|---|"]
    for size, result in results.items():
        one, many = (statistics.median(r["images_per_second"] for r in runs) for runs in result["runs"].values())
        lines.append(f"| {size} | {one:.1f} | {many:.1f} | {result['ratio']:.2f}x |")
    common.publish("\n".join(lines), {"cpus": cpus, "cpu": _cpu_name(), "results": results}, args.out)


if __name__ == "__main__":
    main()
