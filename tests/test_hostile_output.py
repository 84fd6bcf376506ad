"""The output folder is untrusted input (issue 35): whatever state `--out` is in (links planted in it, a
killed run, a full disk, a second run, odd names), originals are never written, nothing outside `--out` is
written, and every input gets exactly one result. One regression test per case of the issue (its number
in the name); real files, real links and real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import rows_of, small_dataset, tree, workers_of, write_image
from maskmodel.cli.main import main


def cli(*args):
    return CliRunner().invoke(main, [os.fsdecode(arg) if isinstance(arg, bytes) else str(arg) for arg in args])


def run(*args, timeout=120):
    """`maskmodel` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "maskmodel", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def image(path, value=90):
    return write_image(Path(path), np.full((48, 64, 3), value, np.uint8))


def journal(out):
    """The names in `out`'s record of written names (recorded before writing, or with their identity after)."""
    entries = [json.loads(line) for line in (out / ".maskmodel" / "written.jsonl").read_bytes().splitlines()]
    return [entry["name"] if isinstance(entry, dict) else entry for entry in entries]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    image(folder / "a.png", 40)
    image(folder / "b.png", 80)
    return folder


@pytest.fixture
def done(tmp_path, photos):
    """An output folder of a finished run over `photos`."""
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out


# --- 1: a hard link planted among the state files never lets a write reach the file it shares ---------

@pytest.mark.parametrize("name", [".maskmodel/lock", ".maskmodel/written.jsonl", "report.csv"])
def test_1_a_hard_link_to_an_original_in_the_state_is_refused(tmp_path, photos, done, name):
    original = photos / "a.png"
    kept = original.read_bytes()
    (done / name).unlink(missing_ok=True)  # a finished run leaves no lock
    os.link(original, done / name)
    image(photos / "c.png")  # something new to record and report
    result = cli("annotate", photos, "--out", done, "-q", "--resume")
    assert original.read_bytes() == kept
    assert result.exit_code == 2, result.output
    assert str(done / name) in result.output and "hard link" in result.output


# --- 2, 3: symlinks and FIFOs in the state folder ------------------------------------------------------

def test_2_a_symlink_at_the_old_temporary_report_name_is_never_written_through(tmp_path, photos, done):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (done / ".maskmodel" / "report.csv.tmp").symlink_to(victim)
    image(photos / "c.png")
    result = cli("annotate", photos, "--out", done, "-q", "--resume")
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me"
    assert not (done / "report.csv").is_symlink() and len(rows_of(done)) == 3


def test_3_a_symlink_at_the_record_of_written_names_is_refused(tmp_path, photos, done):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (done / ".maskmodel" / "written.jsonl").unlink()
    (done / ".maskmodel" / "written.jsonl").symlink_to(victim)
    image(photos / "c.png")
    result = cli("annotate", photos, "--out", done, "-q", "--resume")
    assert result.exit_code == 2 and "written.jsonl is a symlink" in result.output, result.output
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("name", ["written.jsonl", "lock", "configuration.json"])
def test_3_a_fifo_among_the_state_files_is_refused_not_a_hang(photos, done, name):
    (done / ".maskmodel" / name).unlink(missing_ok=True)
    os.mkfifo(done / ".maskmodel" / name)
    image(photos / "c.png")
    result = run("annotate", photos, "--out", done, "-q", "--resume", timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{done / '.maskmodel' / name} is a FIFO" in result.stderr


# --- 4: the report is read back like any input ----------------------------------------------------------

def test_4_a_report_path_that_climbs_out_is_refused_and_nothing_is_written_outside(tmp_path, photos):
    done = tmp_path / "saved"  # a run with label exports: a resume rebuilds them from the report
    assert cli("annotate", photos, "--out", done, "-q", "--save", "yolo", "--save", "voc").exit_code == 0
    report = (done / "report.csv").read_bytes()
    assert b"\r\na.png," in report
    (done / "report.csv").write_bytes(report.replace(b"\r\na.png,", b"\r\n../../escaped.png,", 1))
    outside = tree(tmp_path, skip=done)
    result = cli("annotate", photos, "--out", done, "-q", "--resume", "--save", "yolo", "--save", "voc")
    assert result.exit_code == 2 and "not a relative path inside the output folder" in result.output, result.output
    assert tree(tmp_path, skip=done) == outside
    assert not list(tmp_path.parent.glob("escaped.*")) and not list(tmp_path.glob("escaped.*"))
    assert all(isinstance(name, str) and ".." not in name.split("/") for name in journal(done))


def test_4_a_path_reported_twice_is_refused(photos, done):
    lines = (done / "report.csv").read_bytes().split(b"\r\n")
    (done / "report.csv").write_bytes(b"\r\n".join([*lines[:3], lines[1], *lines[3:]]))  # a.png, b.png, a.png
    result = cli("annotate", photos, "--out", done, "-q", "--resume")
    assert result.exit_code == 2 and "reported for two images" in result.output, result.output


# --- 5: a torn last line of the record is cut off, never appended to; a full disk names the file ---------

def test_5_a_torn_record_is_repaired_and_overwrite_then_removes_every_copy(photos, done):
    with open(done / ".maskmodel" / "written.jsonl", "ab") as stream:
        stream.write(b'"half-writ')  # a full disk while appending
    image(photos / "c.png")
    assert cli("annotate", photos, "--out", done, "-q", "--resume").exit_code == 0
    assert "c.png" in journal(done)  # every line whole: the new name is on its own line
    result = cli("annotate", photos, "--out", done, "-q", "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(row["output"] for row in rows_of(done)) == ["a.png", "b.png", "c.png"]  # no c~2.png
    assert not (done / "c~2.png").exists()


def test_5_a_full_disk_names_the_file(tmp_path):
    from maskmodel.runtime.files import write_all

    handle = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as error:
            write_all(handle, b"x" * 100, tmp_path / "out" / ".maskmodel" / "written.jsonl")
    finally:
        os.close(handle)
    assert error.value.errno == 28 and "written.jsonl" in str(error.value)


# --- 6: lock first, then check, then work ----------------------------------------------------------------

def test_6_a_run_that_finishes_while_another_loads_its_models_is_not_replaced(tmp_path, photos, monkeypatch):
    import maskmodel.batch.run as batch

    out = tmp_path / "out"
    real = batch.build_detector

    def slow_model_load(settings):  # meanwhile, another run fills the new --out and ends
        first = run("annotate", photos, "--out", out, "-q")
        assert first.returncode == 0, first.stderr
        return real(settings)

    monkeypatch.setattr(batch, "build_detector", slow_model_load)
    result = cli("annotate", image(tmp_path / "c.png"), "--out", out, "-q")
    assert result.exit_code == 2 and "is not empty" in result.output, result.output
    assert [row["path"] for row in rows_of(out)] == ["a.png", "b.png"]


# --- 7: --overwrite is a transaction -----------------------------------------------------------------

def test_7_a_killed_overwrite_resumes_as_an_overwrite(photos, done, monkeypatch):
    removed = []
    real_unlink = Path.unlink

    def killed_after_one(self, *args, **kwargs):
        if len(removed) == 1:
            raise KeyboardInterrupt  # the run is stopped here
        removed.append(self)
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", killed_after_one)
    cli("annotate", photos, "--out", done, "-q", "--overwrite", "--threshold", "0.8")
    monkeypatch.undo()
    assert removed  # the removal had begun
    result = cli("annotate", photos, "--out", done, "--resume", "--threshold", "0.8")
    assert result.exit_code == 0, result.output
    rows = rows_of(done)
    assert sorted(row["path"] for row in rows) == ["a.png", "b.png"]
    assert all((done / row["output"]).is_file() for row in rows)
    assert json.loads((done / "summary.json").read_text())["processed_this_run"] == 2


# --- 8: report names do not depend on the order of the inputs ----------------------------------------

def test_8_inputs_in_another_order_keep_their_names(tmp_path):
    first, second = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    image(first / "x.png", 10)
    image(second / "x.png", 200)
    out = tmp_path / "out"
    assert cli("annotate", first, second, "--out", out, "-q").exit_code == 0
    clean = rows_of(out)
    image(second / "y.png", 120)
    result = cli("annotate", second, first, "--out", out, "-q", "--resume")
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert sorted(row["path"] for row in rows) == ["photos/x.png", "photos~2/x.png", "photos~2/y.png"]
    assert rows[:2] == clean


def test_8_a_prefix_that_would_name_another_input_is_refused(tmp_path):
    first, second = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    image(first / "x.png", 10)
    image(second / "x.png", 200)
    out = tmp_path / "out"
    assert cli("annotate", first, second, "--out", out, "-q").exit_code == 0
    third = tmp_path / "0" / "photos"  # sorts first: would take the name "photos"
    image(third / "x.png", 30)
    result = cli("annotate", third, first, second, "--out", out, "-q", "--resume")
    assert result.exit_code == 2 and "inputs:" in result.output, result.output


# --- 9: every option that changes an output is remembered --------------------------------------------

@pytest.mark.parametrize("first, then, named", [
    (["--blur-faces"], [], "blur_faces"),
    (["--format", "jpg"], [], "image_format"),
    (["--labels", "none"], [], "style.labels"),
])
def test_9_resume_without_blur_or_drawing_options_is_refused(tmp_path, photos, first, then, named):
    out = tmp_path / "out"
    assert cli("annotate", photos / "a.png", "--out", out, "-q", *first).exit_code == 0
    result = cli("annotate", photos, "--out", out, "-q", "--resume", *then)
    assert result.exit_code == 2 and named in result.output, result.output
    assert len(rows_of(out)) == 1


# --- 10, 11: inputs and --out compared by identity ------------------------------------------------------

def test_10_an_out_that_is_the_input_through_a_bind_mount_is_refused(tmp_path, photos):
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    before = tree(photos)
    script = (f'mount --bind "{photos}" "{mounted}" && exec "{sys.executable}" -m maskmodel annotate "{photos}" '
              f'--out "{mounted}" -q --overwrite')
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.decode().strip()}")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "is the input" in result.stderr
    assert tree(photos) == before and not (photos / ".maskmodel").exists()


def test_11_an_input_folder_inside_out_is_an_error_row(tmp_path, photos):
    parent = photos.parent
    result = cli("annotate", photos, "--out", parent, "-q", "--resume")
    assert result.exit_code == 1, result.output
    [row] = rows_of(parent)
    assert row["path"] == "photos" and row["status"] == "error" and "inside --out" in row["message"]


# --- 12: report names are distinct and reversible ----------------------------------------------------

def test_12_a_name_that_is_not_utf8_never_meets_a_real_name(tmp_path):
    folder = tmp_path / "in"
    image(folder / "plain.png")
    raw = os.fsencode(folder) + b"/\xff.png"
    shutil.copy(folder / "plain.png", raw)
    shutil.copy(folder / "plain.png", folder / "\\xff.png")  # the literal text an escape would give
    out = tmp_path / "out"
    result = cli("annotate", folder, "--out", out, "-q", "--save-json")
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert len({row["path"] for row in rows}) == 3 == json.loads((out / "summary.json").read_text())["images"]
    from maskmodel.outputs.report import path_bytes

    assert sorted(path_bytes(row["path"]) for row in rows) == sorted([b"\xff.png", b"\\xff.png", b"plain.png"])
    records = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(bytes.fromhex(r["path_hex"]) for r in records if "path_hex" in r) == [b"\\xff.png", b"\xff.png"]
    assert cli("annotate", folder, "--out", out, "-q", "--resume", "--save-json").exit_code == 0
    assert len(rows_of(out)) == 3


# --- 13, 14: the files maskmodel reads are parsed as they are structured -----------------------------

def _jp2_with_a_decoy_header(declared=(1, 1)) -> bytes:
    """A real 64x48 JP2 with a box before its header box that holds the bytes of an image header box."""
    import struct

    import cv2

    data = cv2.imencode(".jp2", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
    decoy = b"ihdr" + struct.pack(">II", *declared) + bytes(6)
    header = data.index(b"jp2h") - 4
    return data[:header] + struct.pack(">I4s", 8 + len(decoy), b"junk") + decoy + data[header:]


def test_13_the_jp2_size_guard_reads_boxes_in_order(tmp_path):
    from maskmodel.io.imagesize import declared_size

    data = _jp2_with_a_decoy_header()
    assert declared_size(data) == (48, 64)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "decoy.jp2").write_bytes(data)
    out = tmp_path / "out"
    for jobs in ("1", "2"):  # processes of their own: --max-pixels sets OpenCV's limit in the environment
        result = run("annotate", folder, "--out", out / jobs, "-q", "--max-pixels", "1000", "--jobs", jobs)
        assert result.returncode == 1, result.stderr
        [row] = rows_of(out / jobs)
        assert row["status"] == "error" and "64x48 pixels, more than the limit of 1000" in row["message"]


def test_14_external_weights_that_are_not_files_in_the_model_folder_are_refused(tmp_path, photos):
    import onnx

    from helpers import tiny_classifier

    model = tiny_classifier(tmp_path / "run")
    fifo = tmp_path / "weights.fifo"
    os.mkfifo(fifo)
    graph = onnx.load(str(model / "model.onnx"))
    weight = graph.graph.initializer[0]
    weight.data_location = onnx.TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=str(fifo))
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    onnx.save(graph, str(model / "model.onnx"))
    for backend in ("opencv", "onnxruntime", "openvino"):
        result = run("annotate", photos, "--out", tmp_path / f"out-{backend}", "-q", "--model", model,
                     "--backend", backend, timeout=90)
        assert result.returncode in (1, 2), result.stderr
        assert f"its weights in {str(fifo)!r} are refused" in result.stderr, result.stderr


# --- 15, 16, 17: evaluate writes only where it may ------------------------------------------------------

@pytest.fixture
def voc(tmp_path):
    """A VOC folder holding a copy (never a link: an unfixed evaluate would write into ../shared through
    it) of the first crowd-dev photo and its annotation."""
    from helpers import CROWD_DEV, crowd_images

    folder = tmp_path / "voc"
    (folder / "images").mkdir(parents=True)
    (folder / "annotations").mkdir()
    for path in crowd_images(1):
        shutil.copyfile(path, folder / "images" / path.name)
        shutil.copyfile(CROWD_DEV / "annotations" / f"{path.stem}.xml", folder / "annotations" / f"{path.stem}.xml")
    return folder


def test_15_fit_box_never_replaces_an_existing_file_or_an_annotation_of_the_dataset(tmp_path, voc):
    annotation = next((voc / "annotations").iterdir())
    kept = annotation.read_bytes()
    for options in ([], ["--overwrite"]):
        result = cli("evaluate", "detect", voc, "--out", tmp_path / "e", "--fit-box", annotation, *options)
        assert result.exit_code == 2, result.output
        assert "--fit-box" in result.output
    assert annotation.read_bytes() == kept and not (tmp_path / "e").exists()
    existing = tmp_path / "box.json"
    existing.write_text("mine")
    result = cli("evaluate", "detect", voc, "--out", tmp_path / "e", "--fit-box", existing)
    assert result.exit_code == 2 and "exists" in result.output, result.output
    assert existing.read_text() == "mine"


def test_16_evaluate_overwrite_never_writes_through_a_symlink(tmp_path, voc):
    out = tmp_path / "e"
    out.mkdir()
    victim = tmp_path / "victim.json"
    victim.write_text("keep me")
    (out / "metrics.json").symlink_to(victim)
    (out / "pr_curves.png").symlink_to(victim)
    result = cli("evaluate", "detect", voc, "--out", out, "--overwrite", "--face-detector", "yunet")
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me"
    assert not (out / "metrics.json").is_symlink() and json.loads((out / "metrics.json").read_text())["face_ap50"] >= 0


def test_17_fit_box_in_a_missing_folder_is_refused_before_the_evaluation(tmp_path, voc):
    result = cli("evaluate", "detect", voc, "--out", tmp_path / "e", "--fit-box", tmp_path / "missing" / "box.json")
    assert result.exit_code == 2 and "does not exist" in result.output, result.output
    assert not (tmp_path / "e").exists()


# --- 18: every option is checked before the first file is written ------------------------------------

def test_18_a_codec_that_is_not_a_fourcc_is_refused_before_any_work(tmp_path, photos):
    out = tmp_path / "out"
    result = cli("annotate", photos, "--out", out, "-q", "--codec", "toolong")
    assert result.exit_code == 2 and "--codec" in result.output and "toolong" in result.output, result.output
    assert not out.exists()


# --- all together: random sequences of runs, kills, resumes, overwrites and planted links ----------------

STATE_NAMES = (".maskmodel/lock", ".maskmodel/written.jsonl", ".maskmodel/configuration.json", ".maskmodel/run.json",
               ".maskmodel/overwriting", ".maskmodel/report.csv.tmp", "report.csv", "summary.json", "a.png")
_CLEAN: dict[str, bytes] = {}


def _clean_report(photos, tmp_path_factory) -> bytes:
    """The report of one uninterrupted run over `photos` (made once)."""
    if "report" not in _CLEAN:
        out = tmp_path_factory.mktemp("clean") / "out"
        assert cli("annotate", photos, "--out", out, "-q").exit_code == 0
        _CLEAN["report"] = (out / "report.csv").read_bytes()
    return _CLEAN["report"]


def _steps():
    from hypothesis import strategies as st

    mode = st.sampled_from(["--resume", "--overwrite"])
    return st.lists(st.one_of(
        st.tuples(st.just("run"), mode),
        st.tuples(st.just("kill"), mode, st.floats(0.5, 2.0)),
        st.tuples(st.just("start-kill"), mode, st.floats(0.0, 1.5)),
        st.tuples(st.just("plant"), st.sampled_from(STATE_NAMES), st.sampled_from(["symlink", "hardlink"]),
                  st.sampled_from(["original", "outside"]))), min_size=2, max_size=4)


def _property_photos(base: Path) -> Path:
    photos = base / "photos"
    if not photos.exists():
        image(photos / "a.png", 40)
        image(photos / "sub" / "b.png", 80)
        image(photos / "c.png", 120)
    return photos


def _kill_in_worker_start_up(command: list[str], delay: float) -> None:
    """Start `maskmodel annotate --jobs 2` in a process group of its own, SIGKILL it `delay` seconds after
    its first worker process appears (while the workers import and load their models), and check that no
    worker of that group is left 60 seconds later (issue 41 case 9)."""
    process = subprocess.Popen([sys.executable, "-m", "maskmodel", *command, "--jobs", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120  # then `delay` seconds from the first worker
    while process.poll() is None and time.time() < deadline:
        if deadline - time.time() > delay and workers_of(process.pid):
            deadline = time.time() + delay
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.time() + 60
    while workers_of(process.pid, group=True) and time.time() < deadline:
        time.sleep(0.2)
    left = workers_of(process.pid, group=True)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "a worker outlived the main process"


def test_any_sequence_of_runs_kills_and_planted_links_keeps_originals_and_gives_the_clean_report(tmp_path_factory):
    from hypothesis import HealthCheck, example, given, settings

    base = tmp_path_factory.mktemp("property")
    photos = _property_photos(base)
    clean = _clean_report(photos, tmp_path_factory)

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(_steps())
    @example([("plant", ".maskmodel/lock", "hardlink", "original"), ("run", "--resume")])
    @example([("kill", "--overwrite", 2.0), ("run", "--resume")])
    @example([("plant", ".maskmodel/written.jsonl", "symlink", "outside"), ("kill", "--resume", 2.0),
              ("run", "--overwrite")])
    @example([("start-kill", "--overwrite", 0.3), ("run", "--resume")])
    def check(steps):
        work = Path(tempfile_dir(base))
        outside = work / "outside.txt"
        outside.write_text("not maskmodel's")
        out, saved = work / "out", work / "saved"
        saved.mkdir()
        originals = tree(photos)
        everything_outside = tree(photos.parent, skip=work)
        assert cli("annotate", photos, "--out", out, "-q").exit_code == 0
        planted: list[Path] = []
        for step in steps:
            if step[0] == "plant":
                _, name, kind, target = step
                where, source = out / name, (photos / "a.png" if target == "original" else outside)
                if where in planted:
                    continue
                if os.path.lexists(where):  # swapped out: the user puts it back when the run names the link
                    os.rename(where, saved / name.replace("/", "_"))
                where.parent.mkdir(parents=True, exist_ok=True)
                where.symlink_to(source) if kind == "symlink" else os.link(source, where)
                planted.append(where)
            elif step[0] == "run":
                result = cli("annotate", photos, "--out", out, "-q", step[1])
                assert result.exit_code in ((0, 2) if planted else (0,)), result.output
            elif step[0] == "start-kill":
                _kill_in_worker_start_up(["annotate", str(photos), "--out", str(out), "-q", step[1]], step[2])
            else:
                process = subprocess.Popen([sys.executable, "-m", "maskmodel", "annotate", str(photos), "--out",
                                            str(out), "-q", step[1]], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                time.sleep(step[2])
                process.send_signal(signal.SIGKILL)
                process.wait()
            assert tree(photos) == originals
            assert outside.read_text() == "not maskmodel's"
            assert tree(photos.parent, skip=work) == everything_outside
        for where in planted:  # the user moves away what the refusals named, and puts back what was there
            if os.path.lexists(where):
                where.unlink()
            kept = saved / where.relative_to(out).as_posix().replace("/", "_")
            if kept.exists():
                os.rename(kept, where)
        result = cli("annotate", photos, "--out", out, "-q", "--resume")
        assert result.exit_code == 0, result.output
        assert (out / "report.csv").read_bytes() == clean
        rows = rows_of(out)
        assert sorted(row["path"] for row in rows) == ["a.png", "c.png", "sub/b.png"]
        assert all((out / row["output"]).is_file() for row in rows)
        shutil.rmtree(work)

    check()


def tempfile_dir(base: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(dir=base)


# --- the files of train, evaluate, export and models install: runs, kills and links planted where they write -

def _command_steps(names: tuple[str, ...], modes: tuple[str, ...], kill_after: tuple[float, float]):
    """One to three steps (plant a link at a name the command writes, to an original or to a file outside;
    SIGKILL the command after a number of seconds or once it has begun writing a name), then a run in
    `modes[-1]` (the mode that replaces what is there)."""
    from hypothesis import strategies as st

    steps = st.lists(st.one_of(
        st.tuples(st.just("plant"), st.sampled_from(names), st.sampled_from(["symlink", "hardlink"]),
                  st.sampled_from(["original", "outside"])),
        st.tuples(st.just("kill"), st.sampled_from(modes), st.one_of(st.floats(*kill_after), st.sampled_from(names)))),
        min_size=1, max_size=3)
    return steps.map(lambda chosen: [*chosen, ("run", modes[-1])])


def _fresh_files(out: Path, name: str) -> set[str]:
    """The fresh files `new_file` writes `out/name` under (`.STEM-RANDOM.partial.SUFFIX`) in `out` now."""
    stem, suffix = Path(name).stem[:40], Path(name).suffix[:16]
    try:
        entries = os.listdir(out)
    except FileNotFoundError:
        return set()
    return {entry for entry in entries if entry.startswith(f".{stem}-") and entry.endswith(f".partial{suffix}")}


def _hostile_sequence(work: Path, out: Path, names: tuple[str, ...], original: Path,
                      command: Callable[[str], list[str]], steps: list[tuple]) -> None:
    """Take `steps` against a command (`command(mode)`: its arguments) that writes `names` into the folder
    `out`, everything else of the test under `work`. After each step nothing outside `out` has changed
    (`original`, a file outside, every other file under `work`); a run exits 0, or 2 where its mode does not
    replace files and `out` holds some, and a run that exits 0 leaves every name a file of its own (no link)."""
    outside = work / "outside.txt"
    outside.write_text("not maskmodel's")
    before = tree(work, skip=out)
    for step in steps:
        if step[0] == "plant":
            _, name, kind, target = step
            where, source = out / name, (original if target == "original" else outside)
            if os.path.lexists(where):
                where.unlink()
            where.parent.mkdir(parents=True, exist_ok=True)
            where.symlink_to(source) if kind == "symlink" else os.link(source, where)
        elif step[0] == "run":
            result = subprocess.run([sys.executable, "-m", "maskmodel", *command(step[1])], capture_output=True,
                                    text=True, timeout=300)
            refusal = result.returncode == 2 and "--overwrite" not in step[1] and "--overwrite" in result.stderr
            assert result.returncode == 0 or refusal, result.stderr
            for name in names if result.returncode == 0 else ():
                info = os.lstat(out / name)
                assert info.st_nlink == 1 and not (out / name).is_symlink() and info.st_size > 0, name
        else:
            moment = step[2]  # seconds, or the name whose writing is interrupted
            left = _fresh_files(out, moment) if isinstance(moment, str) else set()  # by runs killed earlier
            process = subprocess.Popen([sys.executable, "-m", "maskmodel", *command(step[1])],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + (moment if isinstance(moment, float) else 300)
            while process.poll() is None and time.time() < deadline and not (
                    isinstance(moment, str) and _fresh_files(out, moment) - left):
                time.sleep(0.005)
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert outside.read_bytes() == b"not maskmodel's"
        assert tree(work, skip=out) == before, step


def _property_settings(examples: int):
    from hypothesis import HealthCheck, settings

    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


TRAIN_NAMES = ("dataset_report.json", "metrics.json", "run.json", "model.json", "model.keras", "model.onnx",
               "curves.png", "confusion.png")


def test_any_sequence_of_train_runs_kills_and_planted_links_keeps_the_photos_and_writes_only_its_run(
        tmp_path_factory):
    pytest.importorskip("keras")
    from hypothesis import example, given

    base = tmp_path_factory.mktemp("train-property")

    @_property_settings(1)
    @given(_command_steps(TRAIN_NAMES, ("--overwrite",), (2.0, 25.0)))
    @example([("plant", "metrics.json", "hardlink", "original"), ("plant", "model.onnx", "symlink", "outside"),
              ("kill", "--overwrite", "model.keras"), ("run", "--overwrite")])
    def check(steps):
        work = Path(tempfile_dir(base))
        data = small_dataset(work / "data", 2)
        run = work / "run"
        _hostile_sequence(work, run, TRAIN_NAMES, next((data / "train" / "with_mask").iterdir()),
                          lambda mode: ["train", str(data), "--out", str(run), *mode.split(), "--smoke", "--alpha",
                                        "0.35", "--weights", "none", "--quiet"], steps)
        shutil.rmtree(work)

    check()


EVALUATE_NAMES = ("metrics.json", "pr_curves.png", "predictions.coco.json")


def test_any_sequence_of_evaluate_runs_kills_and_planted_links_keeps_the_dataset_and_writes_only_its_out(
        tmp_path_factory):
    from hypothesis import example, given

    from helpers import CROWD_DEV, crowd_images

    base = tmp_path_factory.mktemp("evaluate-property")

    @_property_settings(3)
    @given(_command_steps(EVALUATE_NAMES, ("", "--overwrite"), (0.3, 4.0)))
    @example([("plant", "metrics.json", "hardlink", "original"), ("plant", "pr_curves.png", "symlink", "outside"),
              ("kill", "--overwrite", "predictions.coco.json"), ("run", "--overwrite")])
    def check(steps):
        work = Path(tempfile_dir(base))
        voc = work / "voc"
        (voc / "images").mkdir(parents=True)
        (voc / "annotations").mkdir()
        [photo] = crowd_images(1)
        shutil.copyfile(photo, voc / "images" / photo.name)
        annotation = voc / "annotations" / f"{photo.stem}.xml"
        shutil.copyfile(CROWD_DEV / "annotations" / annotation.name, annotation)
        out = work / "evaluation"
        _hostile_sequence(work, out, EVALUATE_NAMES, annotation,
                          lambda mode: ["evaluate", "detect", str(voc), "--out", str(out), "--face-detector", "yunet",
                                        "--quiet", *mode.split()], steps)
        shutil.rmtree(work)

    check()


def test_any_sequence_of_export_and_models_install_runs_kills_and_planted_links_writes_only_their_file(
        tmp_path_factory, monkeypatch):
    from hypothesis import example, given

    from helpers import COVID, SHARED

    base = tmp_path_factory.mktemp("export-property")
    keras_file = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"

    @_property_settings(4)
    @given(_command_steps(("model.onnx",), ("", "--overwrite"), (0.05, 1.0)))
    @example([("plant", "model.onnx", "hardlink", "original"), ("run", "")])
    @example([("plant", "model.onnx", "symlink", "outside"), ("kill", "--overwrite", "model.onnx"),
              ("run", "--overwrite")])
    def export(steps):
        work = Path(tempfile_dir(base))
        photo = work / "photos" / "a.jpg"
        photo.parent.mkdir()
        shutil.copyfile(next((COVID / "test" / "with_mask").iterdir()), photo)
        out = work / "exported"
        out.mkdir()
        _hostile_sequence(work, out, ("model.onnx",), photo, lambda mode: [
            "export", "mask-mobilenetv2-0.35", "--out", str(out / "model.onnx"), *mode.split()], steps)
        shutil.rmtree(work)

    @_property_settings(3)
    @given(_command_steps((keras_file,), ("",), (0.05, 1.0)))
    @example([("plant", keras_file, "hardlink", "original"), ("kill", "", keras_file), ("run", "")])
    def install(steps):
        work = Path(tempfile_dir(base))
        source = work / "from" / keras_file
        source.parent.mkdir()
        shutil.copyfile(SHARED / "models" / "keras" / keras_file, source)
        monkeypatch.setenv("KERAS_HOME", str(work / "keras"))  # the command's own processes read it
        _hostile_sequence(work, work / "keras" / "models", (keras_file,), source,
                          lambda mode: ["models", "install", "--from", str(source.parent)], steps)
        shutil.rmtree(work)

    export()
    install()
