"""Videos: a short clip panning and zooming over a crowd-dev photo, annotated and watched."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from maskmodel.video.tracking import FaceTracker
from helpers import CROWD_DEV

FRAMES, SIZE = 24, (320, 240)


def make_clip(path, codec="MJPG", fps=8.0):
    """Pan and zoom over a street photo with five large faces."""
    photo = cv2.imread(str(CROWD_DEV / "images" / "maksssksksss148.png"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, SIZE)
    assert writer.isOpened()
    height, width = photo.shape[:2]
    for index in range(FRAMES):
        zoom = 1.0 - 0.1 * index / FRAMES
        w, h = int(width * zoom), int(width * zoom * 3 / 4)
        x, y = int((width - w) * index / FRAMES), max(0, (height - h) // 2)
        writer.write(cv2.resize(photo[y : y + h, x : x + w], SIZE, interpolation=cv2.INTER_AREA))
    writer.release()
    return path


def frame_count(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    size = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    return count, size


def rows_of(report):
    with open(report, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture()
def clips(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    make_clip(folder / "street.avi")
    make_clip(folder / "street.mp4", codec="mp4v")
    return folder


def test_annotate_videos(clips, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(clips), "--out", str(out), "--save-json"])
    assert result.exit_code == 0, result.output
    rows = rows_of(out / "report.csv")
    records = {r["path"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    for name in ("street.avi", "street.mp4"):
        assert frame_count(out / name) == (FRAMES, SIZE)
        mine = [r for r in rows if r["path"] == name]
        assert {int(r["frame"]) for r in mine} == set(range(FRAMES))  # faces in every frame
        assert all(abs(float(r["time_s"]) - int(r["frame"]) / 8.0) < 1e-3 for r in mine)
        lengths = {}
        for row in mine:
            if row["track"]:  # a low-scoring face that continued no track has none
                lengths[row["track"]] = lengths.get(row["track"], 0) + 1
            else:
                assert float(row["score"]) < FaceTracker().high_score
        assert sum(n >= FRAMES // 2 for n in lengths.values()) >= 3  # the big faces keep their ids
        assert len(lengths) <= 3 * max(len([r for r in mine if r["frame"] == "0"]), 1)
        for frame in range(FRAMES):  # face numbers restart each frame
            assert sorted(int(r["face"]) for r in mine if r["frame"] == str(frame)) == \
                list(range(sum(r["frame"] == str(frame) for r in mine)))
        tracks = records[name]["tracks"]  # per person: first and last frame, frames seen, majority label
        assert records[name]["kind"] == "video" and sorted(str(t["track"]) for t in tracks) == sorted(lengths)
        for track in tracks:
            seen = [r for r in mine if r["track"] == str(track["track"])]
            assert track["frames"] == len(seen) and track["first_frame"] == min(int(r["frame"]) for r in seen)
            assert track["last_frame"] == max(int(r["frame"]) for r in seen)
            labels = [r["label"] for r in seen]
            assert labels.count(track["label"]) == max(map(labels.count, set(labels)))
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["videos"], summary["video_frames_with_faces"]) == (0, 2, 2 * FRAMES)
    assert "2 videos" in result.output
    page = (out / "report.html").read_text()
    people = page[page.index("Videos: people"):page.index("<h2>Errors")]
    assert people.count("<tr>") - 1 == sum(len(r["tracks"]) for r in records.values()) > 0
    assert summary["faces"] < len(rows) / 5  # people (tracks), not face-frames


def test_every_nth_frame(clips, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(clips / "street.avi"), "--out", str(out), "--every", "3"])
    assert result.exit_code == 0, result.output
    frames = {int(r["frame"]) for r in rows_of(out / "report.csv")}
    assert frames == set(range(0, FRAMES, 3))
    assert frame_count(out / "street.avi") == (FRAMES, SIZE)


def test_bad_videos_are_error_rows(tmp_path, clips):
    folder = tmp_path / "bad"
    folder.mkdir()
    data = (clips / "street.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[:200])
    (folder / "notes.avi").write_text("not a video")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out)])
    assert result.exit_code == 1
    rows = {r["path"]: r for r in rows_of(out / "report.csv")}
    assert rows["truncated.mp4"]["status"] == rows["notes.avi"]["status"] == "error"
    assert "cannot open video" in rows["notes.avi"]["message"] or "no frame" in rows["notes.avi"]["message"]
    assert not list(out.rglob("*.mp4")) and not list(out.rglob("*.avi"))


def test_watch_headless_writes_the_stream(clips, tmp_path):
    out = tmp_path / "watched.mp4"
    result = CliRunner().invoke(main, ["watch", "--source", str(clips / "street.avi"), "--no-display", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{FRAMES} frames" in result.output and "people" in result.output
    assert frame_count(out) == (FRAMES, SIZE)


def watch_without_display(*args: str) -> subprocess.CompletedProcess:
    """`maskmodel watch ARGS` in a process that has no display to open windows on (as on a server)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return subprocess.run([sys.executable, "-m", "maskmodel", "watch", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="this machine has a camera 0")
def test_watch_missing_camera_is_our_one_line():
    result = watch_without_display("--source", "0", "--no-display")
    assert result.returncode == 1  # OpenCV's own lines (obsensor's [ERROR], the backends' warnings) are not shown
    assert result.stderr.splitlines() == ["Error: cannot open camera 0 (missing, unsupported codec or not a video)"]


def test_watch_without_a_display_says_so_or_only_writes(clips, tmp_path):
    shown = watch_without_display("--source", str(clips / "street.mp4"), "--max-frames", "3")
    assert shown.returncode == 2, shown.stderr  # not Qt's abort (134)
    [line] = shown.stderr.splitlines()
    assert line.startswith("Error: no display (") and line.endswith("): use --no-display or --out")
    out = tmp_path / "watched.mp4"
    written = watch_without_display("--source", str(clips / "street.mp4"), "--max-frames", "3", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert f"written to {out}" in written.stdout and frame_count(out) == (3, SIZE)


def test_one_frame_flicker_does_not_flip_a_track():
    from maskmodel.pipeline import Face
    from maskmodel.video.tracking import FaceTracker

    tracker = FaceTracker()
    masked = {"with_mask": 0.95, "without_mask": 0.05}
    flipped = {"with_mask": 0.1, "without_mask": 0.9}
    labels = []
    for probabilities in (masked, masked, flipped, masked, masked):
        (track,) = tracker.update([Face((10, 10, 50, 50), 0.9, max(probabilities, key=probabilities.get), probabilities)])
        labels.append((track.track_id, track.label))
    assert labels == [(1, "with_mask")] * 5
    assert tracker.people() == {1: "with_mask"}


def test_jittery_small_faces_that_dip_and_leave_are_counted_once():
    """13 faces of 12-20 px whose boxes jitter by up to 3 px a frame, whose scores dip below the threshold that
    starts a track, and one person who leaves the view for 10 frames: 13 people (a tracker that needs IoU 0.3
    with the last box, or forgets a face after 5 frames, counts more)."""
    from maskmodel.pipeline import Face
    from maskmodel.video.tracking import FaceTracker

    rng = np.random.default_rng(0)
    tracker, probabilities = FaceTracker(), {"with_mask": 0.9, "without_mask": 0.1}
    centres, sizes = rng.uniform(30, 370, (13, 2)), rng.uniform(12, 20, 13)
    for frame in range(40):
        faces = []
        for person, ((x, y), size) in enumerate(zip(centres + [2.0 * frame, 0], sizes)):
            if person == 0 and 10 <= frame < 20:
                continue  # out of view
            x, y = x + rng.uniform(-3, 3), y + rng.uniform(-3, 3)
            score = 0.35 if frame % 4 == 3 else 0.8
            faces.append(Face((x - size / 2, y - size / 2, x + size / 2, y + size / 2), score, "with_mask", probabilities))
        tracker.update(faces)
    assert len(tracker.people()) == 13


def test_video_faces_carry_their_track_and_landmarks(tmp_path):
    from maskmodel.pipeline import MaskDetector
    from maskmodel.video.frames import annotate_video

    results, size = annotate_video(make_clip(tmp_path / "street.avi"), MaskDetector(), None)
    frames = [frame for frame, _ in results]
    assert size == SIZE and frames == sorted(frames) and {frame.index for frame in frames} == set(range(FRAMES))
    tracks = [face.track for _, face in results]
    assert all(isinstance(track, int) or face.score < FaceTracker().high_score for track, (_, face) in zip(tracks, results))
    assert len(set(tracks)) < len(tracks)
    assert all(face.landmarks and len(face.landmarks) == 5 for _, face in results)
    for index in range(FRAMES):  # one track per face within a frame
        in_frame = [face.track for frame, face in results if frame.index == index and face.track is not None]
        assert len(in_frame) == len(set(in_frame))
