"""People counted in videos against the truth: the face tracker on clips whose identities are known.

    python -m bench.tracking [--out bench/results/tracking.json]

Each clip moves a window over an annotated crowd-dev photo (10 to 61 faces, crowd-dev's sizes), 30 frames
at the photo's own resolution: `pan` 2 px a frame (issue 44's clip), `zoom` in by 1 % a frame, `out and back`
3 px a frame to one side for 15 frames and back, so that faces at the edge leave and return. Every frame runs
the default detector and classifier once; the trackers then run on the same detections: maskmodel's
(`maskmodel.video.tracking.FaceTracker`, as `annotate` and `watch` use it) and, where Roboflow's `trackers`
package is installed (`pip install trackers`), its ByteTrack with the same thresholds, the maintained
implementation of the same method.

Two truths, because crowd-dev's labelling is not exhaustive: the annotated faces (moved with the window; a
detection is that person's when it overlaps their box, IoU >= 0.3) detected in at least `MIN_TRACK_FRAMES`
frames, and the objects the detector keeps finding (those people, plus the other detections mapped back to
the photo's coordinates and grouped by IoU >= 0.3, seen in at least `MIN_TRACK_FRAMES` frames: unlabelled
background faces and false detections). The first is the people count a user expects; the second isolates
the tracker's own errors (a count above it: one object split into several tracks). Printed per clip and
tracker: both truths, the people counted (tracks of at least `MIN_TRACK_FRAMES` frames, as the summary
counts them), the two ratios, ID switches (an annotated person's track id changing between detected frames)
and tracks per person.
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
from maskmodel.results import Face
from maskmodel.video.tracking import FaceTracker

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


def detections(detector: MaskDetector, frames: list[np.ndarray]) -> list[list[Face]]:
    """Each frame's faces (detector and classifier run once, for every tracker)."""
    return [list(detector.detect(frame)) for frame in frames]


def maskmodel_tracks(faces: list[list[Face]]) -> list[list[int | None]]:
    """Each face's track id from maskmodel's tracker, as `annotate` runs it (`None`: no track)."""
    tracker = FaceTracker()
    return [[face.track for face in tracked_faces(found, tracker)] for found in faces]


def bytetrack_tracks(faces: list[list[Face]]) -> list[list[int | None]]:
    """Each face's track id from Roboflow's `trackers` ByteTrack with maskmodel's thresholds."""
    import supervision
    import trackers

    defaults = FaceTracker()
    tracker = trackers.ByteTrackTracker(lost_track_buffer=defaults.lost_frames, minimum_consecutive_frames=1,
                                        track_activation_threshold=defaults.high_score,
                                        high_conf_det_threshold=defaults.high_score, minimum_iou_threshold=defaults.min_iou)
    ids = []
    for found in faces:
        if not found:
            tracker.update(supervision.Detections.empty())
            ids.append([])
            continue
        result = tracker.update(supervision.Detections(
            xyxy=np.array([f.box for f in found], dtype=np.float64), confidence=np.array([f.score for f in found]),
            data={"face": np.arange(len(found))}))
        frame_ids: list[int | None] = [None] * len(found)
        for index, track in zip(result.data["face"], result.tracker_id):
            frame_ids[int(index)] = int(track) if track >= 0 else None
        ids.append(frame_ids)
    return ids


def measure(faces: list[list[Face]], ids: list[list[int | None]], truths: list[np.ndarray],
            views: list[tuple[float, float, float, float]], size: tuple[int, int]) -> dict:
    """Compare one tracker's ids with the truth's identities (see the module's docstring)."""
    person_tracks, track_frames, matched, objects = defaultdict(list), Counter(), set(), []
    for number, (found, frame_ids, truth, (x, y, w, h)) in enumerate(zip(faces, ids, truths, views)):
        taken: set[int] = set()
        to_photo = np.array([w / size[0], h / size[1]] * 2)
        for face, track in zip(found, frame_ids):
            if track is not None:
                track_frames[track] += 1
            overlaps = np.nan_to_num(box_iou(np.array(face.box), np.nan_to_num(truth, nan=-1.0)), nan=0.0)
            overlaps[list(taken)] = 0.0
            person = int(np.argmax(overlaps)) if len(overlaps) else -1
            if person >= 0 and overlaps[person] >= MATCH_IOU:
                taken.add(person)
                person_tracks[person].append(track)
                matched.add(track)
                continue
            box = np.array(face.box) * to_photo + np.array([x, y, x, y])  # an unannotated object, in the photo
            near = [box_iou(seen[0], box[None])[0] for seen in objects]
            if near and max(near) >= MATCH_IOU:
                objects[int(np.argmax(near))][1].add(number)
            else:
                objects.append((box, {number}))
    people = {p: ids for p, ids in person_tracks.items() if len(ids) >= MIN_TRACK_FRAMES}
    counted = [track for track, count in track_frames.items() if count >= MIN_TRACK_FRAMES]
    tracked = {p: [t for t in ids if t is not None] for p, ids in people.items()}
    return {"truth_people": len(people), "truth_objects": len(people) + sum(len(o[1]) >= MIN_TRACK_FRAMES for o in objects),
            "counted_people": len(counted), "unannotated_tracks": len(set(counted) - matched),
            "id_switches": sum(sum(a != b for a, b in zip(t, t[1:])) for t in tracked.values()),
            "tracks_per_person": round(float(np.mean([len(set(t)) for t in tracked.values() if t] or [0])), 2)}


def trackers_to_run() -> dict:
    """maskmodel's tracker, and Roboflow's ByteTrack where `trackers` is installed."""
    runs = {"maskmodel": maskmodel_tracks}
    try:
        import trackers  # noqa: F401
    except ImportError:
        print("Roboflow's trackers is not installed (pip install trackers): only maskmodel's tracker is measured")
    else:
        runs["trackers ByteTrack"] = bytetrack_tracks
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/tracking.json")
    args = parser.parse_args()
    detector, results, runs = MaskDetector(), {}, trackers_to_run()
    for name in PHOTOS:
        photo = cv2.imread(str(CROWD_DEV / "images" / f"{name}.png"))
        truth = np.array([face.box for face in read_voc(CROWD_DEV / "annotations" / f"{name}.xml",
                                                        CROWD_DEV / "images").faces], dtype=np.float64)
        for kind in ("pan", "zoom", "out and back"):
            frames, truths = clip(photo, truth, kind)
            views = windows(kind, photo.shape[1], photo.shape[0])
            faces = detections(detector, frames)
            for tracker, run in runs.items():
                results[f"{name} {kind} | {tracker}"] = {
                    "faces": len(truth), **measure(faces, run(faces), truths, views, frames[0].shape[1::-1])}
    lines = ["| clip | tracker | annotated faces | people (truth) | objects found | people counted | counted / people "
             "| counted / objects | ID switches | tracks per person |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        clip_name, tracker = key.split(" | ")
        lines.append(f"| {clip_name} | {tracker} | {r['faces']} | {r['truth_people']} | {r['truth_objects']} | "
                     f"{r['counted_people']} | {r['counted_people'] / max(r['truth_people'], 1):.2f} | "
                     f"{r['counted_people'] / max(r['truth_objects'], 1):.2f} | {r['id_switches']} | "
                     f"{r['tracks_per_person']} |")
    for tracker in runs:
        mine = [r for key, r in results.items() if key.endswith(f"| {tracker}")]
        error = [abs(r["counted_people"] / max(r["truth_people"], 1) - 1) for r in mine]
        lines.append(f"| all clips | {tracker} | | | | | mean error {np.mean(error):.2f}, worst {max(error):.2f} | | "
                     f"{sum(r['id_switches'] for r in mine)} | |")
    common.publish("\n".join(lines), {"frames": FRAMES, "match_iou": MATCH_IOU, "results": results}, args.out)


if __name__ == "__main__":
    main()
