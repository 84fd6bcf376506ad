"""Reliability round 4 (issue 41): every file maskmodel writes, not only the run state of `annotate`. One
regression test per case of the issue (its number in the name); real files, real links. Fixtures copy
files from ../shared, never link into it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from helpers import SHARED, alive, rows_of, small_dataset, tiny_classifier, tree, workers_of, write_image
from maskmodel.cli.main import main
from maskmodel.runtime import onnxproto

KERAS_FILES = SHARED / "models" / "keras"
IMAGENET_035 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


def cli(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def image(path: Path, value: int = 90) -> Path:
    return write_image(path, np.full((48, 64, 3), value, np.uint8))


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """A Keras folder of this test's own (`$KERAS_HOME/models`), holding a good copy of the 0.35 file."""
    home = tmp_path / "keras-home"
    (home / "models").mkdir(parents=True)
    shutil.copyfile(KERAS_FILES / IMAGENET_035, home / "models" / IMAGENET_035)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home / "models"


# --- 1: train, export and models install write through one writer: a planted link is replaced ----------

def test_1_train_overwrite_never_writes_through_links_planted_in_the_run_folder(tmp_path):
    pytest.importorskip("keras")
    data = small_dataset(tmp_path / "data")
    photo = next((data / "train" / "with_mask").iterdir())
    kept = photo.read_bytes()
    run = tmp_path / "run"
    run.mkdir()
    hard = ["dataset_report.json", "metrics.json", "run.json", "model.json", "model.keras"]
    for name in hard:
        os.link(photo, run / name)
    victims = {}
    for name in ("model.onnx", "curves.png", "confusion.png"):
        victims[name] = tmp_path / f"outside-{name}"
        victims[name].write_text("keep me")
        (run / name).symlink_to(victims[name])
    result = cli("train", data, "--out", run, "--overwrite", "--smoke", "--alpha", "0.35", "--weights", "none",
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert photo.read_bytes() == kept and os.stat(photo).st_nlink == 1
    assert all(victim.read_text() == "keep me" for victim in victims.values())
    for name in [*hard, *victims]:
        info = os.lstat(run / name)
        assert info.st_nlink == 1 and not (run / name).is_symlink() and info.st_size > 0, name


def test_1_models_install_never_writes_through_a_link_at_its_temporary_name(tmp_path, keras_home):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (keras_home / f".{IMAGENET_035}.part").symlink_to(victim)  # the fixed temporary name of the old install
    source = tmp_path / "from"
    source.mkdir()
    shutil.copyfile(KERAS_FILES / IMAGENET_035, source / IMAGENET_035)
    (keras_home / IMAGENET_035).unlink()
    os.link(source / IMAGENET_035, keras_home / IMAGENET_035)  # a hard link at the target: replaced, not written
    result = cli("models", "install", "--from", source)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me"
    assert os.stat(source / IMAGENET_035).st_nlink == 1
    assert (keras_home / IMAGENET_035).read_bytes() == (KERAS_FILES / IMAGENET_035).read_bytes()


def test_1_export_overwrite_replaces_a_hard_link_at_out(tmp_path):
    original = tmp_path / "original.onnx"
    original.write_bytes(b"an original")
    out = tmp_path / "model.onnx"
    os.link(original, out)
    result = cli("export", "mask-mobilenetv2-0.35", "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert original.read_bytes() == b"an original"
    assert os.stat(out).st_nlink == 1 and out.stat().st_size > 1000
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


# --- 3: models install checks the sha256 of Keras' files; a weights file that does not load is one line --

def test_3_models_install_refuses_a_keras_file_that_is_not_kerass(tmp_path, keras_home):
    good = (keras_home / IMAGENET_035).read_bytes()
    source = tmp_path / "from"
    source.mkdir()
    (source / IMAGENET_035).write_bytes(os.urandom(4096))
    result = cli("models", "install", "--from", source)
    assert result.exit_code == 2, result.output
    assert "sha256" in result.output and "Traceback" not in result.output
    assert (keras_home / IMAGENET_035).read_bytes() == good
    assert sorted(path.name for path in keras_home.iterdir()) == [IMAGENET_035]


def test_3_models_install_refuses_a_keras_file_it_cannot_check(tmp_path, keras_home):
    source = tmp_path / "from"
    source.mkdir()
    name = IMAGENET_035.replace("_0.35_", "_0.5_")
    (source / name).write_bytes(os.urandom(4096))
    result = cli("models", "install", "--from", source)
    assert result.exit_code == 2, result.output
    assert "knows no sha256" in result.output
    assert not (keras_home / name).exists()


@pytest.mark.parametrize("junk", ["junk.weights.h5", "junk.keras"])
def test_3_train_with_weights_that_do_not_load_is_one_line_exit_2(tmp_path, junk):
    pytest.importorskip("keras")
    data = small_dataset(tmp_path / "data", 1)
    weights = tmp_path / junk
    weights.write_bytes(os.urandom(2048))
    result = cli("train", data, "--out", tmp_path / "run", "--smoke", "--alpha", "0.35", "--weights", weights,
                 "--quiet")
    assert result.exit_code == 2, result.output
    assert str(weights) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_3_train_refuses_a_damaged_imagenet_file_in_kerass_folder(tmp_path, keras_home):
    pytest.importorskip("keras")
    data = small_dataset(tmp_path / "data", 1)
    (keras_home / IMAGENET_035).write_bytes(os.urandom(4096))
    result = cli("train", data, "--out", tmp_path / "run", "--smoke", "--alpha", "0.35", "--quiet")
    assert result.exit_code == 2, result.output
    assert str(keras_home / IMAGENET_035) in result.output and "sha256" in result.output


# --- 2: a recorded name is ours only while its file is the one written; another run's --out is never entered

def killed_before(out: Path, name: str) -> None:
    """Make `out` what a run killed before it wrote `name` (the last image of its report) leaves: the name
    recorded, no file, no rows, no identity."""
    (out / name).unlink()
    lines = (out / "report.csv").read_bytes().split(b"\r\n")
    (out / "report.csv").write_bytes(b"\r\n".join(line for line in lines if name.encode() not in line))
    record = out / ".maskmodel" / "written.jsonl"
    record.write_bytes(b"".join(line + b"\n" for line in record.read_bytes().splitlines()
                                if not line.startswith(b"{") or json.loads(line)["name"] != name))


@pytest.fixture
def nested(tmp_path):
    """Photos `a.png` and `sub/x.png` annotated into `out`, killed before the copy of `sub/x.png`."""
    photos = tmp_path / "photos"
    image(photos / "a.png", 40)
    image(photos / "sub" / "x.png", 80)
    out = tmp_path / "out"
    assert cli("annotate", photos, "--out", out, "-q").exit_code == 0
    name = next(row["output"] for row in rows_of(out) if row["path"].endswith("x.png"))
    killed_before(out, name)
    return photos, out, out / name


def test_2_a_folder_that_is_another_runs_out_is_never_entered(tmp_path, nested):
    photos, out, copy = nested
    other = tmp_path / "other"
    image(other / copy.name, 200)
    result = cli("annotate", other / copy.name, "--out", copy.parent, "-q")  # run B: the empty folder as its --out
    assert result.exit_code == 0, result.output
    theirs = tree(copy.parent)
    result = cli("annotate", photos, "--out", out, "-q", "--resume")
    assert result.exit_code == 1, result.output
    assert tree(copy.parent) == theirs
    assert "another run's output folder" in next(row["message"] for row in rows_of(out) if row["path"].endswith("x.png"))
    result = cli("annotate", photos, "--out", out, "-q", "--overwrite", "--dry-run")
    assert result.exit_code == 1, result.output
    assert tree(copy.parent) == theirs


def test_2_a_recorded_name_whose_file_is_not_the_one_written_is_not_ours(nested):
    photos, out, copy = nested
    copy.write_bytes(b"the user's own file, put where a killed run had meant to write")
    result = cli("annotate", photos, "--out", out, "-q", "--resume")
    assert result.exit_code == 0, result.output
    assert copy.read_bytes().startswith(b"the user's own file")
    written = next(row["output"] for row in rows_of(out) if row["path"].endswith("x.png"))
    assert written != copy.relative_to(out).as_posix() and (out / written).is_file()
    result = cli("annotate", photos, "--out", out, "-q", "--overwrite", "--dry-run")
    assert result.exit_code == 0, result.output
    assert copy.read_bytes().startswith(b"the user's own file") and not (out / written).exists()


# --- 4, 5, 11: the TIFF size guard: linear time, the larger of two sizes, a size of another type refused

def tiff(entries: list[tuple[int, int, int]], pad: int = 0) -> bytes:
    """A little-endian TIFF with one directory of (tag, type, value) entries, then `pad` zero bytes."""
    directory = b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries)
    return b"II*\0" + struct.pack("<IH", 8, len(entries)) + directory + struct.pack("<I", 0) + bytes(pad)


def test_11_a_tiff_width_of_type_rational_is_one_error_row_and_the_batch_goes_on(tmp_path):
    photos = tmp_path / "photos"
    image(photos / "a.png")
    (photos / "b.tif").write_bytes(tiff([(256, 5, 8)]))  # 26 bytes: ImageWidth as a RATIONAL
    assert len((photos / "b.tif").read_bytes()) == 26
    image(photos / "c.png")
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q")
    assert result.exit_code == 1, result.output
    rows = {row["path"]: row for row in rows_of(out)}
    assert set(rows) == {"a.png", "b.tif", "c.png"}
    assert rows["b.tif"]["status"] == "error" and rows["c.png"]["status"] != "error"
    result = cli("predict", photos / "b.tif")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert json.loads(result.output)["error"]


def test_5_a_tiff_declaring_its_size_twice_is_held_to_the_larger():
    from maskmodel.io.imagesize import declared_size

    assert declared_size(tiff([(256, 4, 12000), (257, 4, 12000), (256, 3, 16), (257, 3, 16)])) == (12000, 12000)


def test_4_the_tiff_guard_takes_linear_time():
    from maskmodel.io.imagesize import declared_size

    entries = [(256, 4, 64), (257, 4, 64)] + [(300 + index, 3, 0) for index in range(4000)]
    data = tiff(entries, pad=4 << 20)
    started = time.perf_counter()
    assert declared_size(data) == (64, 64)
    assert time.perf_counter() - started < 1.0


# --- 13: an input given as a file:// URI is the local folder it names ----------------------------------

def test_13_an_input_given_as_a_file_uri_is_read_as_the_local_folder(tmp_path):
    photos = tmp_path / "photos"
    image(photos / "a.png")
    out = tmp_path / "out"
    result = cli("annotate", f"file://{photos}", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert [row["path"] for row in rows_of(out)] == ["a.png"]
    result = cli("annotate", f"file://{tmp_path / 'missing'}", "--out", tmp_path / "out2", "-q")
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output


# --- 17: --save voc escapes what XML cannot hold: every annotation parses -------------------------------

def test_17_voc_annotations_of_names_with_control_characters_parse(tmp_path):
    from xml.etree import ElementTree

    photos = tmp_path / "photos"
    names = ["a\x01b.png", "esc\x1b[31m.png", "cr\r.png", "plain.png"]
    for name in names:
        image(photos / name)
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q", "--save", "voc")
    assert result.exit_code == 0, result.output
    files = sorted((out / "annotations").iterdir())
    assert len(files) == len(names)
    found = {ElementTree.parse(path).getroot().findtext("filename") for path in files}
    assert found == {"a\\x01b.png", "esc\\x1b[31m.png", "cr\\x0d.png", "plain.png"}
    assert json.loads((out / "summary.json").read_text())["exports_refused"] == []


# --- 14: an input folder named .maskmodel never puts its copies into the state folder ------------------

def test_14_an_input_folder_named_like_the_state_folder_gets_another_prefix(tmp_path):
    photos, state_named = tmp_path / "photos", tmp_path / ".maskmodel"
    image(photos / "a.png")
    image(state_named / "b.png")
    out = tmp_path / "out"
    result = cli("annotate", photos, state_named, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert sorted(row["path"] for row in rows) == [".maskmodel~2/b.png", "photos/a.png"]
    assert all(row["status"] != "error" and not row["output"].startswith(".maskmodel/") for row in rows)
    image(photos / "c.png")
    result = cli("annotate", photos, state_named, "--out", out, "-q", "--resume")
    assert result.exit_code == 0, result.output
    assert len(rows_of(out)) == 3


# --- 18: the runtime is part of the remembered configuration ----------------------------------------------

def test_18_resume_on_another_runtime_is_refused(tmp_path):
    pytest.importorskip("onnxruntime")
    photos, out = tmp_path / "photos", tmp_path / "out"
    image(photos / "a.png")
    result = cli("annotate", photos / "a.png", "--out", out, "-q", "--backend", "opencv")
    assert result.exit_code == 0, result.output
    before = (out / "report.csv").read_bytes()
    image(photos / "b.png")
    result = cli("annotate", photos, "--out", out, "-q", "--resume", "--backend", "onnxruntime")
    assert result.exit_code == 2, result.output
    message = result.output.strip().splitlines()[-1]
    assert "--resume with other settings" in message
    assert 'runtime.face_detector.backend "opencv" -> "onnxruntime"' in message
    assert (out / "report.csv").read_bytes() == before
    result = cli("annotate", photos, "--out", out, "-q", "--resume", "--backend", "opencv")
    assert result.exit_code == 0, result.output
    assert len(rows_of(out)) == 2


# --- 9: a worker exits when its parent dies, also before its initializer ran -------------------------------

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_9_workers_exit_when_the_main_process_dies_during_their_start_up(tmp_path):
    photos = tmp_path / "photos"
    for index in range(4):
        image(photos / f"{index}.png", 40 * index)
    command = [sys.executable, "-m", "maskmodel", "annotate", str(photos), "--out", str(tmp_path / "out"), "-q",
               "--jobs", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.time() + 120
    while len(workers) < 2 and time.time() < deadline and process.poll() is None:  # the spawned workers
        workers = workers_of(process.pid)
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)  # while the workers still import: before their initializer runs
    process.wait()
    assert workers, "the run did not start its workers"
    try:
        deadline = time.time() + 60
        while any(map(alive, workers)) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(map(alive, workers)), "a worker outlived the main process"
    finally:
        for pid in filter(alive, workers):
            os.kill(pid, signal.SIGKILL)


# --- 8: a model file that is not ONNX is refused at its first bytes -------------------------------------------

@pytest.mark.parametrize("backend", ["opencv", "onnxruntime"])
def test_8_a_model_of_zeros_is_refused_at_once(tmp_path, backend):
    pytest.importorskip("onnx")
    model = tiny_classifier(tmp_path / "model")
    with open(model / "model.onnx", "wb") as file:
        file.truncate(64 << 20)  # a sparse file of zeros (the issue's: 1 GB)
    started = time.perf_counter()
    result = cli("annotate", image(tmp_path / "a.png"), "--out", tmp_path / "out", "--model", model, "-q",
                 "--backend", backend)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "not an ONNX file" in result.output and time.perf_counter() - started < 5


@pytest.mark.parametrize("data", [b"\x00" * 8, b"\x08\x01\x00\x00", b"\x3a\x10short", b"\x08\xff\xff\xff"])
def test_8_protobuf_that_no_message_has_is_refused(data):
    """Field number 0 (zeros), a length-delimited field running past the end, a varint cut off."""
    with pytest.raises(ValueError):
        list(onnxproto.fields(data))


# --- 12: a video the codec cannot encode is one error row, not a disk failure ------------------------------

def video(path: Path, fourcc: str, width: int, height: int) -> Path:
    """Two frames written by OpenCV (25 frames per second)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (width, height))
    assert writer.isOpened()
    for value in (40, 80):
        writer.write(np.full((height, width, 3), value, np.uint8))
    writer.release()
    return path


def test_12_a_video_the_codec_cannot_encode_is_one_error_row_and_the_batch_goes_on(tmp_path):
    photos = tmp_path / "photos"
    video(photos / "wide.mkv", "MJPG", 8192, 16)  # the default mp4v cannot encode 8192 pixels wide
    slow = video(photos / "slow.avi", "MJPG", 64, 48)
    data = bytearray(slow.read_bytes())
    struct.pack_into("<II", data, data.index(b"strh") + 28, 10000, 1)  # dwScale, dwRate: 0.0001 fps
    slow.write_bytes(bytes(data))
    image(photos / "z.png")
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q")
    assert result.exit_code == 1 and "the run stopped" not in result.output, result.output
    rows = {row["path"]: row for row in rows_of(out)}
    assert set(rows) == {"slow.avi", "wide.mkv", "z.png"} and rows["z.png"]["status"] != "error"
    for name in ("slow.avi", "wide.mkv"):
        assert rows[name]["status"] == "error" and "cannot encode" in rows[name]["message"]
    assert not [path for path in out.iterdir() if path.suffix in (".avi", ".mkv")]


TALL_AVI = """
import cv2, numpy as np, sys
writer = cv2.VideoWriter(sys.argv[1], cv2.VideoWriter_fourcc(*"MJPG"), 5, (2, 3000))
for _ in range(2):
    writer.write(np.full((3000, 2, 3), 128, np.uint8))
writer.release()
"""


def test_10_a_file_that_crashes_opencv_is_one_row_and_the_run_goes_on_at_one_job(tmp_path):
    """The issue's file: an MJPG .avi of 2x3000-pixel frames corrupts OpenCV's heap when it is encoded (making
    it aborts its own process too). Below 64 photos (`--jobs auto`: one worker) the run finishes with a row
    for every file (the avi's an error, or a row of a retry that got through); the run used to die with SIGABRT (exit 134), and every --resume with it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    subprocess.run([sys.executable, "-c", TALL_AVI, str(photos / "tall.avi")], capture_output=True, timeout=120)
    assert (photos / "tall.avi").stat().st_size > 1000  # written before OpenCV aborts
    for index in range(3):
        image(photos / f"p{index}.png", 60 + 40 * index)
    before = {path.name: path.read_bytes() for path in photos.iterdir()}
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "maskmodel", "annotate", str(photos), "--out", str(out), "-q"],
                         capture_output=True, text=True, timeout=600)
    # 1 when the avi's row is an error; 0 when a retry got through (the heap's damage is not always fatal)
    assert run.returncode in (0, 1) and "the run stopped" not in run.stderr, run.stderr[-2000:]
    rows = {row["path"]: row for row in rows_of(out)}
    assert set(rows) == set(before) and all(rows[f"p{index}.png"]["status"] != "error" for index in range(3))
    assert run.returncode == 0 or "process died" in rows["tall.avi"]["message"]
    assert {path.name: path.read_bytes() for path in photos.iterdir()} == before


def test_7_a_small_image_followed_by_a_huge_payload_is_refused_before_it_is_read(tmp_path):
    photos = tmp_path / "photos"
    padded = image(photos / "padded.png")
    with open(padded, "r+b") as stream:  # sparse: 1.5 GB on paper, nothing on disk
        stream.truncate(1536 << 20)
    image(photos / "plain.png")
    started = time.perf_counter()
    result = cli("annotate", photos, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 1, result.output
    rows = {row["path"]: row for row in rows_of(tmp_path / "out")}
    assert rows["plain.png"]["status"] != "error" and rows["padded.png"]["status"] == "error"
    from maskmodel.io.imageio import file_budget

    height, width = cv2.imread(str(photos / "plain.png")).shape[:2]
    assert f"far more than its {width}x{height} pixels need (at most {file_budget(height, width)})" \
        in rows["padded.png"]["message"]
    assert time.perf_counter() - started < 60  # reading 1.5 GB and copying it took ~3 GB before


def test_7_a_padded_image_in_a_folder_uri_is_refused_as_on_disk(tmp_path, s3_uri):
    """`file://DIR` is the local folder (`InputType`: `read_file`); a folder on S3 is read through the same
    budget (its files were read whole)."""
    from helpers import upload_tree
    from maskmodel.io.imageio import file_budget

    photos = tmp_path / "photos"
    padded = image(photos / "padded.png")
    height, width = cv2.imread(str(padded)).shape[:2]
    with open(padded, "r+b") as stream:  # one byte over the budget: 64 MB of zeros behind the picture
        stream.truncate(file_budget(height, width) + 1)
    image(photos / "plain.png")
    uri = s3_uri("padded")
    upload_tree(photos, uri)
    for number, source in enumerate([f"file://{photos}", uri]):
        result = cli("annotate", source, "--out", tmp_path / f"out{number}", "-q")
        assert result.exit_code == 1, result.output
        rows = {row["path"]: row for row in rows_of(tmp_path / f"out{number}")}
        assert rows["plain.png"]["status"] != "error", source
        assert f"far more than its {width}x{height} pixels need (at most {file_budget(height, width)})" \
            in rows["padded.png"]["message"], source


def test_6_max_pixels_applies_to_the_frames_of_a_video(tmp_path):
    photos = tmp_path / "photos"
    video(photos / "big.avi", "MJPG", 640, 480)  # 307,200 pixels a frame
    video(photos / "small.avi", "MJPG", 320, 240)  # 76,800
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q", "--max-pixels", "100000")
    assert result.exit_code == 1, result.output
    rows = {row["path"]: row for row in rows_of(out)}
    assert rows["big.avi"]["status"] == "error"
    assert "declares 640x480 frames, more than the limit of 100000 pixels" in rows["big.avi"]["message"]
    assert rows["small.avi"]["status"] != "error"

# --- 16: the export options are part of the remembered configuration ------------------------------------------

@pytest.mark.parametrize(("first", "resumed", "named"), [
    ([], ["--save-crops"], "exports.save_crops null -> []"),  # crops cannot be rebuilt from the report
    (["--save", "coco", "--save-json"], [], 'exports.save ["coco"] -> []'),  # would describe earlier images only
    (["--save-json"], ["--save-json", "--save-crops", "with_mask"], 'exports.save_crops null -> ["with_mask"]'),
])
def test_16_resume_with_other_export_options_is_refused(tmp_path, first, resumed, named):
    photos, out = tmp_path / "photos", tmp_path / "out"
    image(photos / "a.png")
    result = cli("annotate", photos / "a.png", "--out", out, "-q", *first)
    assert result.exit_code == 0, result.output
    before = tree(out, skip=out / ".maskmodel")
    image(photos / "b.png")
    result = cli("annotate", photos, "--out", out, "-q", "--resume", *resumed)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    message = result.output.strip().splitlines()[-1]
    assert "--resume with other settings" in message and named in message, message
    assert tree(out, skip=out / ".maskmodel") == before
    result = cli("annotate", photos, "--out", out, "-q", "--resume", *first)
    assert result.exit_code == 0, result.output
    assert len(rows_of(out)) == 2


def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """`jpeg` with an APP1 EXIF segment declaring `orientation` (big-endian TIFF, one IFD entry), as phones
    write it."""
    tiff = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) \
        + struct.pack(">I", 0)
    segment = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + jpeg[2:]


def test_15_voc_without_size_reads_boxes_against_the_image_as_its_exif_orientation_turns_it(tmp_path):
    from helpers import CROWD_DEV
    from maskmodel.evaluation.annotations import read_voc
    from maskmodel.io.imagesize import declared_size

    name = "maksssksksss518"  # 400 x 225: turned, its height is 400
    upright = cv2.imread(str(CROWD_DEV / "images" / f"{name}.png"))
    stored = cv2.imencode(".jpg", cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
    data = _with_orientation(stored.tobytes(), 6)  # a phone's portrait photo: stored turned, shown upright
    assert declared_size(data) == upright.shape[:2][::-1]
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == upright.shape  # OpenCV turns it
    voc = tmp_path / "phone"
    (voc / "images").mkdir(parents=True)
    (voc / "annotations").mkdir()
    (voc / "images" / f"{name}.jpg").write_bytes(data)
    xml = (CROWD_DEV / "annotations" / f"{name}.xml").read_text()
    xml = xml.replace(f"{name}.png", f"{name}.jpg")
    start, end = xml.find("<size>"), xml.find("</size>") + len("</size>")
    (voc / "annotations" / f"{name}.xml").write_text(xml[:start] + xml[end:] if start >= 0 else xml)
    truth = read_voc(CROWD_DEV / "annotations" / f"{name}.xml", CROWD_DEV / "images")
    turned = read_voc(voc / "annotations" / f"{name}.xml", voc / "images")
    assert turned.faces == truth.faces and turned.clipped == truth.clipped and turned.turned
    result = cli("evaluate", "detect", voc, "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    assert "1 photo(s) without <size> are turned by their EXIF orientation" in result.output
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["images_turned"] == 1


def test_8_a_bad_model_is_one_message_also_from_the_workers_started_early(tmp_path):
    """The worker processes start while the main process checks the models (issue 43): a model that does not
    load is said once by the main process, never as a worker's traceback."""
    photos = tmp_path / "photos"
    image(photos / "a.png")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    run = subprocess.run([sys.executable, "-m", "maskmodel", "annotate", str(photos), "--out", str(tmp_path / "out"),
                          "--model", str(junk), "-q"], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr and "initializer" not in run.stderr, run.stderr
    assert "junk.onnx" in run.stderr and not (tmp_path / "out").exists()
