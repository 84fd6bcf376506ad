"""Frames per second of video annotation on a 720p clip (default settings, 2 cores).

    python -m bench.video [--out bench/results/video.json]

The clip (1280x720, 75 frames at 25 fps) pans and zooms over a crowd-dev photo, so every frame holds
faces. `maskmodel.video.frames.annotate_video` (decode, detect, track, classify, draw, encode) runs with
`--every` 1, 2 and 3, in one process; the target is real time (>= 15 fps).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent

from bench import common
from maskmodel.pipeline import MaskDetector
from maskmodel.video.frames import annotate_video

PHOTO = ROOT.parent / "shared/datasets/crowd-dev/images/maksssksksss11.png"
FRAMES, SIZE, FPS = 75, (1280, 720), 25.0


def make_clip(path: Path) -> None:
    photo = cv2.imread(str(PHOTO))
    height, width = photo.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for index in range(FRAMES):
        zoom = 1.0 - 0.2 * index / FRAMES
        w = int(width * zoom)
        h = min(height, int(w * 9 / 16))
        x, y = int((width - w) * index / FRAMES), (height - h) // 2
        writer.write(cv2.resize(photo[y : y + h, x : x + w], SIZE, interpolation=cv2.INTER_LINEAR))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/video.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-video-"))
    clip = work / "clip.mp4"
    make_clip(clip)
    detector = MaskDetector()
    results = {}
    for every in (1, 2, 3):
        started = time.perf_counter()
        faces, _ = annotate_video(clip, detector, work / f"out-{every}.mp4", every=every)
        seconds = time.perf_counter() - started
        results[every] = {"fps": FRAMES / seconds, "face_frames": len(faces),
                          "tracks": len({face.track for _, face in faces})}
    lines = ["| `--every` | frames/s (720p, decode to encode) | face-frames | tracks |", "|---|---|---|---|"]
    lines += [f"| {every} | {r['fps']:.1f} | {r['face_frames']} | {r['tracks']} |" for every, r in results.items()]
    common.publish("\n".join(lines), {"results": results}, args.out)


if __name__ == "__main__":
    main()
