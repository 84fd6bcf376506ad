"""Hostile inputs, interrupted runs (SIGKILL, SIGINT) and output/model problems."""

import csv
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

import maskmodel
from maskmodel.cli.main import main
from helpers import CROWD_DEV
from hostile import make_hostile_folder
from maskmodel import zoo
from maskmodel.outputs.report import report_rows
from maskmodel.results import ImageResult


def read_report(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def digests(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def test_hostile_folder(tmp_path):
    folder = tmp_path / "archive"
    expected = make_hostile_folder(folder)
    before = digests(folder)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert digests(folder) == before
    rows = read_report(out / "report.csv")  # parses: commas, quotes, newlines, non-UTF-8 names
    status = {}
    for row in rows:
        status.setdefault(row["path"], set()).add(row["status"])
    assert {path: states.pop() for path, states in status.items()} == expected
    assert all(len([r for r in rows if r["path"] == p and r["status"] != "ok"]) <= 1 for p in status)
    messages = {row["path"]: row["message"] for row in rows if row["status"] == "error"}
    assert "more than the limit" in messages["bomb.png"]
    assert "empty file" in messages["zero.jpg"]
    for name in expected:
        if expected[name] == "error":
            assert messages[name] and name.replace("\n", " ").split("/")[-1][:5] in result.output.replace("\n", " ")


def copy_photos(folder, count):
    folder.mkdir(parents=True)
    photos = sorted((CROWD_DEV / "images").glob("*.png"))[:count]
    for photo in photos:
        shutil.copy(photo, folder / photo.name)


def start(folder, out, *extra):
    command = [sys.executable, "-m", "maskmodel", "annotate", str(folder), "--out", str(out), "-q", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(report, images, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if report.exists() and len({r["path"] for r in read_report(report)}) >= images:
            return
        time.sleep(0.05)
    raise AssertionError("the run did not get going")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_killed_run_resumes_to_the_same_report(tmp_path, jobs):
    folder = tmp_path / "in"
    copy_photos(folder, 40)
    reference = tmp_path / "reference"
    assert start(folder, reference, "--jobs", jobs).wait(timeout=300) == 0
    out = tmp_path / "out"
    process = start(folder, out, "--jobs", jobs)
    wait_for_rows(out / "report.csv", 5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    reported = {r["path"] for r in read_report(out / "report.csv")}
    assert 5 <= len(reported) < 40, "the kill should land in the middle of the folder"
    resumed = start(folder, out, "--jobs", jobs, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert (out / "report.csv").read_text() == (reference / "report.csv").read_text()
    assert not list(out.rglob(".tmp-*"))
    for image in out.glob("*.png"):
        assert cv2.imread(str(image)) is not None, image


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    folder = tmp_path / "in"
    copy_photos(folder, 40)
    out, ready = tmp_path / "out", tmp_path / "ready"
    # the run waits after its third image until the signal (tests/interrupt_hooks.py): a run that finished
    # before the signal came cannot pass for one that was interrupted
    command = [sys.executable, "-c", "import interrupt_hooks; interrupt_hooks.main()", "annotate", str(folder),
               "--out", str(out), "-q", "--jobs", "2"]
    env = {**os.environ, "READY_FILE": str(ready),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    # SIGINT's default action in the run: a shell's background job (`pytest ... &`) starts with it ignored, and the
    # run would inherit that and never stop
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(ready, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    rows = read_report(out / "report.csv")
    assert len({r["path"] for r in rows}) == 3 and all(None not in r.values() for r in rows)


def wait_for(path, process, timeout=300):
    """Wait until `path` exists; fail at once if `process` ends first."""
    deadline = time.time() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended ({process.returncode}) before it paused: {process.stderr.read()}")
        if time.time() > deadline:
            raise AssertionError("the run did not get going")
        time.sleep(0.05)


def test_unwritable_output_is_a_clear_error(tmp_path):
    folder = tmp_path / "in"
    copy_photos(folder, 1)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(blocker / "out")])
    assert result.exit_code == 1
    assert str(blocker) in result.output and "Traceback" not in result.output


def test_corrupt_model_file_names_file_and_hash(tmp_path):
    name = maskmodel.DEFAULT_CLASSIFIER
    bad = tmp_path / "model.onnx"
    bad.write_bytes(maskmodel.weights_path(name).read_bytes()[:1000])
    with pytest.raises(zoo.ChecksumError) as error:
        maskmodel.load(name, path=bad)
    assert str(bad) in str(error.value) and zoo.weights_file(name).sha256 in str(error.value)


def test_corrupt_cached_detector_is_named(model_home):
    for name, digest, detector in (("centerface_bnmerged.onnx", "09189dea", "centerface"),
                                   ("face_detection_yunet_2026may.onnx", "ebafce4e", "yunet")):
        cached = model_home / name
        cached.write_bytes(b"truncated")
        result = CliRunner().invoke(main, ["predict", str(CROWD_DEV / "images" / "maksssksksss148.png"),
                                           "--face-detector", detector])
        assert result.exit_code == 1 and result.exception.__class__ is SystemExit
        assert str(cached) in result.output and f"expected {digest}" in result.output


@pytest.fixture()
def full_disk(tmp_path):
    """A 300 KB tmpfs: room for the report and a photo or two, then ENOSPC."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_stops_with_a_clear_error_and_resume_completes(tmp_path, full_disk):
    folder = tmp_path / "in"
    copy_photos(folder, 12)
    out = full_disk / "out"
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out)])
    assert result.exit_code == 1
    assert "No space left on device" in result.output and str(out) in result.output
    reported = {r["path"] for r in read_report(out / "report.csv")} if (out / "report.csv").exists() else set()
    assert len(reported) < 12
    for path in reported:  # nothing marked done that was not written
        assert cv2.imread(str(out / path)) is not None
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)  # free space: continue on a bigger disk
    again = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(moved), "--resume", "-q"])
    assert again.exit_code == 0, again.output
    assert len({r["path"] for r in read_report(moved / "report.csv")}) == 12


class DiesInWorker:
    """A path that kills the worker process it is sent to, like a native crash on that file;
    with a `marker`, only the first time."""

    def __init__(self, path, marker=None):
        self.path, self.marker = path, marker

    def __reduce__(self):
        return die_in_worker, (str(self.path), self.marker and str(self.marker))


def die_in_worker(path, marker):
    if marker is None or not os.path.exists(marker):
        if marker:
            open(marker, "w").close()
        os._exit(1)
    return Path(path)


def test_dead_worker_processes_are_replaced_and_their_images_retried(tmp_path):
    from maskmodel.batch.engines import MAX_ATTEMPTS, iter_annotate
    from maskmodel.outputs.report import WORKER_DIED as DIED
    from maskmodel.batch.worker import AnnotateSettings
    from maskmodel.io.crawl import InputFile

    photos = sorted((CROWD_DEV / "images").glob("*.png"))[:7]
    settings = AnnotateSettings(out_dir=str(tmp_path / "out"), dry_run=True)
    expected = list(iter_annotate([InputFile(p, p.name) for p in photos], settings, jobs=1))
    items = [InputFile(p, p.name) for p in photos]
    items[2] = InputFile(DiesInWorker(photos[2], tmp_path / "died-once"), photos[2].name)
    items[5] = InputFile(DiesInWorker(photos[5]), photos[5].name)
    results = list(iter_annotate(items, settings, jobs=2))
    assert (tmp_path / "died-once").exists()
    assert results[5] == ImageResult.failure(photos[5].name, DIED.format(MAX_ATTEMPTS))
    # as reported (rounded): the pool's processes run OpenCV with one thread, this process with more
    assert [report_rows(r) for r in results[:5] + results[6:]] == [report_rows(r) for r in expected[:5] + expected[6:]]
