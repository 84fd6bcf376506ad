"""Helpers shared by the benchmark scripts: dataset knowledge, the CLI run with memory sampling, and writing
results."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"

# crowd-dev photos that also appear (whole, or a near-identical face) in real-facemask: left out of
# every crowd-dev evaluation (datasets/crowd-dev.md).
CROWD_DEV_OVERLAP = frozenset({"maksssksksss71.png", "maksssksksss758.png"})


def ilc_part(part: str) -> list:
    """The `train`, `val` or `test` photos of ilc-2021 (annotated images) in the project's one split:
    duplicate-aware, seed 0, 80/10/10 (`maskmodel.training.photos.split_photos`), the split the classifiers
    are trained with. "ILC val" in every benchmark is its `val` part."""
    from maskmodel.training.photos import split_photos

    return [photo.annotated for photo in split_photos(SHARED / "datasets/ilc-2021") if photo.split == part]


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def run_annotate(inputs: Path, out: Path, *flags: str) -> dict:
    """`maskmodel annotate INPUTS --out OUT FLAGS --quiet` as a user runs it, timed whole, with the peak
    resident memory of its process tree sampled every 20 ms, and the CPU seconds the tree used (less
    sensitive than wall time to other jobs on a shared machine); plus the counts of its summary."""
    beside = Path(sys.executable).with_name("maskmodel")  # the command of this interpreter's environment
    command = [str(beside) if beside.is_file() else shutil.which("maskmodel") or "maskmodel", "annotate", str(inputs), "--out", str(out), *flags, "--quiet"]
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    summary = json.loads((out / "summary.json").read_text())
    return {"flags": " ".join(flags), "exit_code": process.returncode, "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "images": summary["images"], "faces": summary["faces"], "errors": summary["errors"],
            "images_per_second": summary["images"] / seconds, "faces_per_second": summary["faces"] / seconds,
            "peak_rss_mib": peak / 2**20}


def publish(table: str, data: dict, out: Path) -> None:
    """Print the Markdown table and write it with the data as JSON."""
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**data, "table": table}, indent=2))
