"""Face tracks across video frames: ByteTrack's association, a label smoothed over the track.

The association is ByteTrack's (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every
Detection Box", ECCV 2022), as Roboflow's `trackers` package implements it, without its dependencies
(`bench.tracking` runs both on the same detections): faces scoring at least `high_score` are matched first,
to every track, by IoU with the track's predicted box (its last box moved by its velocity); the faces below
that score only continue the tracks left over (a small, blurry face keeps its track through frames where its
score dips, but starts none); a high-scoring face that continues no track starts one; a track not seen for
`lost_frames` frames ends (a person who leaves the view briefly keeps their id).

Each track keeps an exponential moving average of its class probabilities, so a one-frame flicker of the
classifier does not flip the track's label; people are counted by tracks, not face-frames.
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
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box change a frame (x1, y1, x2, y2)
    labels: Counter = field(default_factory=Counter)

    @property
    def label(self) -> str:
        """The smoothed label: the class with the highest averaged probability."""
        return max(self.probabilities, key=self.probabilities.get)

    def predicted(self) -> np.ndarray:
        """Where the box should be in the next frame: the last box moved by the velocity since it was seen."""
        return np.asarray(self.box, dtype=np.float64) + self.velocity * (self.missed + 1)


class FaceTracker:
    """ByteTrack's association with temporally smoothed labels.

    Args:
        high_score: detector score from which a face may start a track and is matched first; faces below it
            only continue tracks. Defaults to `0.5`.
        min_iou: minimum IoU between a track's predicted box and a face to continue it. Defaults to `0.1`.
        lost_frames: frames a track survives without a face. Defaults to `30`.
        smoothing: weight of the newest frame in the moving averages of probabilities and velocity.
            Defaults to `0.3`.
    """

    def __init__(self, high_score: float = 0.5, min_iou: float = 0.1, lost_frames: int = 30,
                 smoothing: float = 0.3) -> None:
        self.high_score = high_score
        self.min_iou = min_iou
        self.lost_frames = lost_frames
        self.smoothing = smoothing
        self.active: list[Track] = []
        self.finished: list[Track] = []
        self._next_id = 1

    def update(self, faces: list[Face]) -> list[Track | None]:
        """Match this frame's faces to tracks; returns each face's track (`None`: a low-scoring face that
        continues no track)."""
        assigned: list[Track | None] = [None] * len(faces)
        high = [i for i, face in enumerate(faces) if face.score >= self.high_score]
        low = [i for i, face in enumerate(faces) if face.score < self.high_score]
        left = self._match(list(range(len(self.active))), high, faces, assigned)
        self._match([t for t in left if self.active[t].missed == 0], low, faces, assigned)
        continued = {id(track) for track in assigned if track is not None}
        for track in self.active:
            if id(track) not in continued:
                track.missed += 1
        for index in high:
            if assigned[index] is None:
                face = faces[index]
                assigned[index] = Track(self._next_id, face.box, dict(face.probabilities))
                assigned[index].labels[assigned[index].label] += 1
                self._next_id += 1
                self.active.append(assigned[index])
        self.finished += [t for t in self.active if t.missed > self.lost_frames]
        self.active = [t for t in self.active if t.missed <= self.lost_frames]
        return assigned

    def _match(self, track_indices: list[int], face_indices: list[int], faces: list[Face],
               assigned: list[Track | None]) -> list[int]:
        """Greedy IoU matching of the given tracks and faces (highest IoU first); returns the tracks left."""
        if not track_indices or not face_indices:
            return track_indices
        boxes = np.array([faces[i].box for i in face_indices], dtype=np.float64)
        overlaps = np.array([box_iou(self.active[t].predicted(), boxes) for t in track_indices])
        used_tracks, used_faces = set(), set()
        for row, column in zip(*np.unravel_index(np.argsort(-overlaps, axis=None), overlaps.shape)):
            if overlaps[row, column] < self.min_iou:
                break
            if row in used_tracks or column in used_faces:
                continue
            used_tracks.add(row)
            used_faces.add(column)
            assigned[face_indices[column]] = self._continue(self.active[track_indices[row]], faces[face_indices[column]])
        return [t for row, t in enumerate(track_indices) if row not in used_tracks]

    def _continue(self, track: Track, face: Face) -> Track:
        step = (np.asarray(face.box, dtype=np.float64) - np.asarray(track.box, dtype=np.float64)) / (track.missed + 1)
        track.velocity = (1 - self.smoothing) * track.velocity + self.smoothing * step
        track.box, track.missed, track.hits = face.box, 0, track.hits + 1
        track.probabilities = {name: (1 - self.smoothing) * track.probabilities[name] + self.smoothing * p
                               for name, p in face.probabilities.items()}
        track.labels[track.label] += 1
        return track

    def people(self, min_hits: int = 2) -> dict[int, str]:
        """Track id -> label (the label it carried most often), for tracks seen in `min_hits` frames."""
        return {t.track_id: t.labels.most_common(1)[0][0] for t in self.finished + self.active if t.hits >= min_hits}
