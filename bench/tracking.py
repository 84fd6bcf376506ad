"""People counted in videos against the truth: the face tracker on clips whose identities are known.

    python -m bench.tracking [--out bench/results/tracking.json]

Each clip moves a window over an annotated crowd-dev photo (10 to 61 faces, crowd-dev's sizes), 30 frames
at the photo's own resolution: `pan` 2 px a frame (issue 44's clip), `zoom` in by 1 % a frame, `out and back`
3 px a frame to one side for 15 frames and back, so that faces at the edge leave and return. The photo's
annotated boxes, moved with the window, are the truth: a face is one person over the whole clip. Every frame
runs the default detector and classifier and the tracking `annotate` uses (`maskmodel.video.frames.tracked_faces`);
a detection is that person's when it overlaps their box (IoU >= 0.3). Printed per clip: the people in the
truth (annotated faces detected in at least `MIN_TRACK_FRAMES` frames), the people counted (tracks of at
least `MIN_TRACK_FRAMES` frames, as the summary counts them), how many of those tracks follow no annotated
face (faces the set leaves unlabelled, false detections), ID switches (a person's track id changing from one
detected frame to the next) and tracks per person.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

from bench import common
from maskmodel.detect.boxes import box_iou
from maskmodel.evaluation.annotations import read_voc
from maskmodel.outputs.report import MIN_TRACK_FRAMES
from maskmodel.pipeline import MaskDetector
from maskmodel.video.frames import tracked_faces
from maskmodel.video.tracking import IoUTracker

ROOT = Path(__file__).resolve().parent.parent
CROWD_DEV = common.SHARED / "datasets/crowd-dev"
PHOTOS = ("maksssksksss657", "maksssksksss690", "maksssksksss296", "maksssksksss240")  # 13, 20, 35, 61 faces
FRAMES = 30
MATCH_IOU = 0.3
STEP = 3.0  # px a frame of `out and back`: 42 px out over 14 frames, then back


def windows(kind: str, width: int, height: int) -> list[tuple[float, float, float, float]]:
    """The (x, y, w, h) window of each frame of clip `kind` over a `width` x `height` photo."""
    if kind == "pan":
        return [(2.0 * i, 0.0, width - 2.0 * FRAMES, height) for i in range(FRAMES)]
    if kind == "zoom":
        return [(width * 0.005 * i, height * 0.005 * i, width * (1 - 0.01 * i), height * (1 - 0.01 * i))
                for i in range(FRAMES)]
    steps = [min(i, FRAMES - 1 - i) for i in range(FRAMES)]  # 0, 1, ... 14, 14, ... 1, 0
    return [(STEP * s, 0.0, width - STEP * max(steps), height) for s in steps]


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def clip(photo: np.ndarray, truth: np.ndarray, kind: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of the clip (all of the first frame's size) and the truth boxes in each (NaN rows: out of view)."""
    height, width = photo.shape[:2]
    frames, boxes = [], []
    views = windows(kind, width, height)
    size = (int(views[0][2]), int(views[0][3]))
    for x, y, w, h in views:
        scale = np.array([size[0] / w, size[1] / h] * 2)
        affine = np.array([[scale[0], 0, -x * scale[0]], [0, scale[1], -y * scale[1]]])
        frames.append(cv2.warpAffine(photo, affine, size, flags=cv2.INTER_LINEAR))
        moved = (truth - np.array([x, y, x, y])) * scale
        inside = np.clip(moved, 0, [size[0], size[1], size[0], size[1]])
        visible = _area(inside) >= 0.5 * _area(moved)
        boxes.append(np.where(visible[:, None], moved, np.nan))
    return frames, boxes


def measure(detector: MaskDetector, frames: list[np.ndarray], truths: list[np.ndarray]) -> dict:
    """Run detection and tracking over the frames; compare the tracks with the truth's identities."""
    tracker, person_tracks, track_frames, matched = IoUTracker(), defaultdict(list), Counter(), set()
    for frame, truth in zip(frames, truths):
        faces = tracked_faces(list(detector.detect(frame)), tracker)
        taken: set[int] = set()
        for face in faces:
            track_frames[face.track] += 1
            overlaps = np.nan_to_num(box_iou(np.array(face.box), np.nan_to_num(truth, nan=-1.0)), nan=0.0)
            overlaps[list(taken)] = 0.0
            person = int(np.argmax(overlaps)) if len(overlaps) else -1
            if person >= 0 and overlaps[person] >= MATCH_IOU:
                taken.add(person)
                person_tracks[person].append(face.track)
                matched.add(face.track)
    people = {p: ids for p, ids in person_tracks.items() if len(ids) >= MIN_TRACK_FRAMES}
    counted = [track for track, count in track_frames.items() if count >= MIN_TRACK_FRAMES]
    switches = sum(sum(a != b for a, b in zip(ids, ids[1:])) for ids in people.values())
    return {"truth_people": len(people), "counted_people": len(counted),
            "unannotated_tracks": len(set(counted) - matched), "id_switches": switches,
            "tracks_per_person": round(float(np.mean([len(set(ids)) for ids in people.values()] or [0])), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/tracking.json")
    args = parser.parse_args()
    detector, results = MaskDetector(), {}
    for name in PHOTOS:
        photo = cv2.imread(str(CROWD_DEV / "images" / f"{name}.png"))
        truth = np.array([face.box for face in read_voc(CROWD_DEV / "annotations" / f"{name}.xml",
                                                        CROWD_DEV / "images").faces], dtype=np.float64)
        for kind in ("pan", "zoom", "out and back"):
            results[f"{name} {kind}"] = {"faces": len(truth), **measure(detector, *clip(photo, truth, kind))}
    lines = ["| clip | annotated faces | people (truth) | people counted | counted / truth | of them, tracks of no "
             "annotated face | ID switches | tracks per person |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {clip_name} | {r['faces']} | {r['truth_people']} | {r['counted_people']} | "
              f"{r['counted_people'] / max(r['truth_people'], 1):.2f} | {r['unannotated_tracks']} | "
              f"{r['id_switches']} | {r['tracks_per_person']} |" for clip_name, r in results.items()]
    common.publish("\n".join(lines), {"frames": FRAMES, "match_iou": MATCH_IOU, "results": results}, args.out)


if __name__ == "__main__":
    main()
