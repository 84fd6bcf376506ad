"""Video files and streams: frames in, tracked and labelled faces out, an annotated video written.

Frames are read with `cv2.VideoCapture`; every `every`-th frame is detected and classified, and faces
are tracked across frames (`maskmodel.video.tracking`), each track's label smoothed over time. The
annotated video keeps the input's frame rate and size; frames between processed ones carry the last
boxes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np

from maskmodel.errors import UsageError
from maskmodel.io.imageio import DEFAULT_MAX_PIXELS
from maskmodel.runtime.opencv import LOG_LEVEL_SILENT, quiet_opencv, require
from maskmodel.drawing.draw import draw_faces
from maskmodel.drawing.labels import DEFAULT_STYLE, LabelStyle
from maskmodel.pipeline import MaskDetector
from maskmodel.results import Face, Frame
from maskmodel.video.tracking import FaceTracker

DEFAULT_CODECS = {".avi": "MJPG"}  # everything else: mp4v


class VideoReadError(Exception):
    """A video could not be opened or decoded; the message says why."""


class VideoWriteError(Exception):
    """The codec cannot encode this video (its frame size or rate): this video's error, not the disk's."""


def open_capture(source: str | int, quiet: bool = True) -> cv2.VideoCapture:
    """`cv2.VideoCapture` for a file, a stream URL or a camera index, or a `VideoReadError`. With `quiet`,
    OpenCV logs nothing while it tries its backends (a missing camera makes each one print an error line,
    such as obsensor's `Camera index out of range`): the `VideoReadError` says what failed."""
    with quiet_opencv(LOG_LEVEL_SILENT) if quiet else nullcontext():
        capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        kind = "camera" if isinstance(source, int) else "video"
        raise VideoReadError(f"cannot open {kind} {source!r} (missing, unsupported codec or not a video)")
    return capture


def iter_frames(capture: cv2.VideoCapture) -> Iterator[tuple[int, np.ndarray]]:
    """(index, BGR frame) until the stream ends."""
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield index, frame
        index += 1


def tracked_faces(faces: list[Face], tracker: FaceTracker) -> list[Face]:
    """This frame's faces with their `track` id, and label and probabilities smoothed by the track (a
    low-scoring face that continues no track keeps its own, and `track` `None`)."""
    tracks = tracker.update(faces)
    return [face if track is None else
            dataclasses.replace(face, label=track.label, probabilities=dict(track.probabilities), track=track.track_id)
            for face, track in zip(faces, tracks)]


def track_captions(faces: list[Face]) -> list[str]:
    """Each face's caption prefix in a video: its track id (`#7`), or nothing for a face without a track."""
    return [f"#{face.track}" if face.track is not None else "" for face in faces]


def annotate_video(path: Path, detector: MaskDetector, out_path: Path | None, every: int = 1,
                   codec: str | None = None, blur: bool = False, style: LabelStyle = DEFAULT_STYLE,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[list[tuple[Frame, Face]], tuple[int, int]]:
    """Detect, track and classify faces in a video file; write the annotated video to `out_path`
    (the caller makes that write atomic: see `maskmodel.io.storage`), drawn with `style` (its size
    is the input's: `style.enlarge` is not used for videos). A video whose container declares frames of
    more than `max_pixels` is refused before any frame is decoded (`--max-pixels`, as for images).

    Returns:
        One `(frame, face)` per face of every processed frame (the face with its `track` id), and the
        frame size (width, height).

    Raises:
        VideoReadError: the file cannot be opened, declares frames larger than `max_pixels` or holds no frame.
        VideoWriteError: the codec cannot encode the annotated video (its frame size or rate).
        OSError: the annotated video cannot be written.
    """
    capture = open_capture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    size = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if size[0] * size[1] > max_pixels:
        capture.release()
        raise VideoReadError(f"video declares {size[0]}x{size[1]} frames, more than the limit of {max_pixels} pixels")
    style = dataclasses.replace(style, enlarge=1.0)
    tracker, writer, drawn = FaceTracker(), None, []
    results = []
    frames = 0
    try:
        for index, frame in iter_frames(capture):
            frames += 1
            if index % every == 0:
                drawn = tracked_faces(detector.detect(frame), tracker)
                results += [(Frame(index, index / fps), face) for face in drawn]
            if out_path is not None:
                if writer is None:
                    writer = open_video_writer(out_path, codec, fps, frame.shape[1], frame.shape[0])
                captions = track_captions(drawn)
                writer.write(draw_faces(frame, drawn, detector.classes, blur, captions, style))
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        raise VideoReadError("no frame could be decoded (truncated file or unsupported codec)")
    return results, size


def check_codec(codec: str | None) -> None:
    """Refuse (`UsageError`) a `--codec` that is not a FOURCC: four printable ASCII characters."""
    if codec is not None and not (len(codec) == 4 and codec.isascii() and codec.isprintable()):
        raise UsageError(f"Expected --codec to be a FOURCC: four ASCII characters such as mp4v or MJPG. "
                         f"Received: codec={codec!r}")


def open_video_writer(out_path: Path, codec: str | None, fps: float, width: int, height: int) -> cv2.VideoWriter:
    """A `cv2.VideoWriter` for `out_path` (codec by suffix unless given). Raises `VideoWriteError` where the
    codec refuses this video (its frame size or rate), `OSError` where its folder cannot be made."""
    require("video_writer", "Writing annotated videos")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or DEFAULT_CODECS.get(out_path.suffix.lower(), "mp4v")
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise VideoWriteError(f"the codec {codec!r} cannot encode this video ({width}x{height} pixels, "
                              f"{fps:g} frames per second)")
    return writer
