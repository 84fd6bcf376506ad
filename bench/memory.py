"""Peak memory of `maskmodel annotate --jobs 2` on a 100-megapixel photo and on 10,000 small images.

    python -m bench.memory [--small 10000] [--out bench/results/memory.json]

Both inputs are generated in a temporary folder: a 10,000 x 10,000 JPEG (a crowd-dev photo enlarged,
so it has faces) next to 20 crowd-dev photos, and N small PNG face crops (96 x 96, cut from crowd-dev
photos). The resident memory of the whole process tree is sampled every 20 ms (target: < 1.5 GiB).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent

from bench import common

IMAGES = ROOT.parent / "shared/datasets/crowd-dev/images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/memory.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    photos = sorted(IMAGES.glob("*.png"))
    big = work / "big"
    big.mkdir()
    for photo in photos[:20]:
        shutil.copy(photo, big / photo.name)
    huge = cv2.resize(cv2.imread(str(photos[0])), (10_000, 10_000), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(big / "huge-100mp.jpg"), huge, [cv2.IMWRITE_JPEG_QUALITY, 85])
    del huge
    small = work / "small"
    for index in range(args.small):
        photo = cv2.imread(str(photos[index % len(photos)]))
        y, x = (index * 37) % max(1, photo.shape[0] - 96), (index * 53) % max(1, photo.shape[1] - 96)
        folder = small / f"{index // 1000:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:05d}.png"), photo[y : y + 96, x : x + 96])
    results = {"100-megapixel photo + 20 photos": common.run_annotate(big, work / "out-big", "--jobs", "2"),
               f"{args.small} small images": common.run_annotate(small, work / "out-small", "--jobs", "2")}
    shutil.rmtree(work)
    lines = ["| input (`maskmodel annotate --jobs 2`) | images | faces | errors | seconds | peak RSS (MiB) |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['images']} | {r['faces']} | {r['errors']} | {r['seconds']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} |")
    common.publish("\n".join(lines), {"results": results}, args.out)


if __name__ == "__main__":
    main()
