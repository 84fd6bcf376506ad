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


def tree_rss_bytes(pid: int) -> list[int]:
    """Resident memory of `pid` and of each of its descendants (Linux /proc), one entry a process."""
    sizes, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                sizes.append(next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:")))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return sizes


def _first_output(out: Path) -> bool:
    """Whether an annotated copy (a finished file, not a temporary one) is in `out` yet."""
    try:
        return any(entry.is_file() and Path(entry.name).suffix.lower() in (".png", ".jpg", ".jpeg")
                   and not entry.name.startswith(".")
                   for entry in os.scandir(out))
    except OSError:
        return False


def run_annotate(inputs: Path, out: Path, *flags: str) -> dict:
    """`maskmodel annotate INPUTS --out OUT FLAGS --quiet` as a user runs it, timed whole, with the peak
    resident memory of its process tree and of its largest process sampled every 20 ms, the seconds until
    the first annotated copy is in OUT, and the CPU seconds the tree used (less sensitive than wall time
    to other jobs on a shared machine); plus the counts of its summary."""
    beside = Path(sys.executable).with_name("maskmodel")  # the command of this interpreter's environment
    command = [str(beside) if beside.is_file() else shutil.which("maskmodel") or "maskmodel", "annotate", str(inputs), "--out", str(out), *flags, "--quiet"]
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = peak_process = 0
    first = None
    while process.poll() is None:
        sizes = tree_rss_bytes(process.pid)
        peak, peak_process = max(peak, sum(sizes)), max([peak_process, *sizes])
        if first is None and _first_output(out):
            first = time.perf_counter() - started
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    summary = json.loads((out / "summary.json").read_text())
    return {"flags": " ".join(flags), "exit_code": process.returncode, "seconds": seconds,
            "cpu_seconds": cpu_seconds, "first_output_seconds": first,
            "images": summary["images"], "faces": summary["faces"], "errors": summary["errors"],
            "images_per_second": summary["images"] / seconds, "faces_per_second": summary["faces"] / seconds,
            "peak_rss_mib": peak / 2**20, "peak_process_rss_mib": peak_process / 2**20}


def publish(table: str, data: dict, out: Path) -> None:
    """Print the Markdown table and write it with the data as JSON."""
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**data, "table": table}, indent=2))
