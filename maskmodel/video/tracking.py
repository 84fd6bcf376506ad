"""Face tracks across video frames: IoU matching and a label smoothed over time.

Each track keeps an exponential moving average of its class probabilities, so a one-frame flicker
of the classifier does not flip the track's label; people are counted by tracks, not face-frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from maskmodel.detect.boxes import box_iou
from maskmodel.results import Face


@dataclass
class Track:
    """One face followed over frames."""

    track_id: int
    box: tuple[float, float, float, float]
    probabilities: dict[str, float]
    hits: int = 1
    missed: int = 0
    labels: Counter = field(default_factory=Counter)

    @property
    def label(self) -> str:
        """The smoothed label: the class with the highest averaged probability."""
        return max(self.probabilities, key=self.probabilities.get)


class IoUTracker:
    """Greedy IoU tracker with temporally smoothed labels.

    Args:
        iou_threshold: minimum IoU between a track's last box and a face to continue it. Defaults to `0.3`.
        max_missed: frames a track survives without a matching face. Defaults to `5`.
        smoothing: weight of the newest frame in the moving average of probabilities. Defaults to `0.3`.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, smoothing: float = 0.3) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.smoothing = smoothing
        self.active: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 1

    def update(self, faces: list[Face]) -> list[Track]:
        """Match this frame's faces to tracks (new tracks for the rest); returns each face's track."""
        assigned: list[Track | None] = [None] * len(faces)
        if self.active and faces:
            boxes = np.array([f.box for f in faces], dtype=np.float64)
            pairs = [(box_iou(np.array(t.box), boxes)[i], ti, i) for ti, t in enumerate(self.active)
                     for i in range(len(faces))]
            used_tracks, used_faces = set(), set()
            for overlap, ti, fi in sorted(pairs, reverse=True):
                if overlap < self.iou_threshold:
                    break
                if ti in used_tracks or fi in used_faces:
                    continue
                used_tracks.add(ti)
                used_faces.add(fi)
                assigned[fi] = self._continue(self.active[ti], faces[fi])
        for index, face in enumerate(faces):
            if assigned[index] is None:
                track = Track(self._next_id, face.box, dict(face.probabilities))
                track.labels[track.label] += 1
                self._next_id += 1
                self.active.append(track)
                assigned[index] = track
        seen = {id(t) for t in assigned}
        for track in self.active:
            if id(track) not in seen:
                track.missed += 1
        self.finished += [t for t in self.active if t.missed > self.max_missed]
        self.active = [t for t in self.active if t.missed <= self.max_missed]
        return assigned

    def _continue(self, track: Track, face: Face) -> Track:
        track.box, track.missed, track.hits = face.box, 0, track.hits + 1
        track.probabilities = {name: (1 - self.smoothing) * track.probabilities[name] + self.smoothing * p
                               for name, p in face.probabilities.items()}
        track.labels[track.label] += 1
        return track

    def people(self, min_hits: int = 2) -> dict[int, str]:
        """Track id -> label (the label it carried most often), for tracks seen in `min_hits` frames."""
        return {t.track_id: t.labels.most_common(1)[0][0] for t in self.finished + self.active if t.hits >= min_hits}
