"""Output safety and run integrity of `annotate` (issue 14): originals are never written, every input
gets its own result, one bad file never stops the batch, reports are whole and safe to open."""

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from helpers import CROWD_DEV, crowd_images, rows_of, tree, write_image
from maskmodel.outputs.report import COLUMNS, original_path
from maskmodel import zoo
from maskmodel.detect.detector_config import DEFAULT_FACE_DETECTOR
from maskmodel.io.runstate import RunState

MIXED = CROWD_DEV / "images" / "maksssksksss148.png"  # five faces


def annotate(*args):
    return CliRunner().invoke(main, ["annotate", *map(str, args), "-q"])


def image(path, height=48, width=64, value=90):
    return write_image(path, np.full((height, width, 3), value, np.uint8))


# --- originals must be untouchable ----------------------------------------------------------------

@pytest.mark.parametrize("mode", ["--overwrite", "--resume"])
def test_a_file_input_in_the_output_folder_is_not_overwritten(tmp_path, mode):
    photos = tmp_path / "photos"
    image(photos / "a.png")
    before = tree(tmp_path)
    result = annotate(photos / "a.png", "--out", photos, mode)
    assert result.exit_code == 0, result.output
    assert all(tree(tmp_path)[path] == digest for path, digest in before.items())
    [row] = rows_of(photos)
    assert row["path"] == "a.png" and row["output"] == "a~2.png" and (photos / "a~2.png").is_file()


def test_relative_inputs_with_dotdot_stay_inside_out(tmp_path, monkeypatch):
    base = tmp_path / "base"
    for folder, name in (("photos", "a.png"), ("photos", "b.png"), ("other", "c.png")):
        image(base / folder / name)
    (base / "work").mkdir()
    before = tree(base)
    monkeypatch.chdir(base / "work")
    result = annotate("..", "../other", "--out", "../o")
    assert result.exit_code == 0, result.output
    after = tree(base, skip=base / "o")
    assert after == before  # nothing written, nothing changed outside --out
    rows = rows_of(base / "o")
    assert sorted(r["path"] for r in rows) == ["base/other/c.png", "base/photos/a.png", "base/photos/b.png"]
    for row in rows:
        assert ".." not in row["output"].split("/") and not row["output"].startswith("/")
        assert (base / "o" / row["output"]).is_file()


def test_out_inside_an_input_is_not_crawled_and_its_files_are_not_replaced(tmp_path):
    photos = tmp_path / "photos"
    image(photos / "x.png", value=10)
    image(photos / "sub" / "x.png", value=200)  # the user's own photo inside what becomes --out
    kept = (photos / "sub" / "x.png").read_bytes()
    result = annotate(photos, "--out", photos / "sub", "--overwrite")
    assert result.exit_code == 0, result.output
    assert (photos / "sub" / "x.png").read_bytes() == kept
    [row] = rows_of(photos / "sub")
    assert row["path"] == "x.png" and row["output"] == "x~2.png"


def test_resume_removes_only_its_own_temporary_files(tmp_path):
    archive = tmp_path / "archive"
    image(archive / "photos" / "img.png")
    image(archive / "photos" / ".tmp-keep.png")
    (archive / "photos" / ".maskmodel-0000-x.png").write_bytes(b"an input that looks like a temp file")
    result = annotate(archive / "photos", "--out", archive, "--resume")
    assert result.exit_code == 1, result.output  # an input folder inside --out is an error row (issue 35, case 11)
    assert [(row["path"], row["status"]) for row in rows_of(archive)] == [("photos", "error")]
    token = RunState(archive)
    token.acquire()
    stale = archive / f"{token.temp_prefix}deadbeef.png"
    token.release()
    stale.write_bytes(b"left by a killed run")
    image(archive / "photos" / "more.png")
    assert annotate(archive / "photos", "--out", archive, "--resume").exit_code == 1
    assert (archive / "photos" / ".tmp-keep.png").is_file()
    assert (archive / "photos" / ".maskmodel-0000-x.png").is_file()
    assert not stale.exists()


def test_symlinks_in_out_are_never_followed(tmp_path):
    photos, out, elsewhere = tmp_path / "photos", tmp_path / "out", tmp_path / "elsewhere"
    image(photos / "a.png")
    assert annotate(photos, "--out", out).exit_code == 0
    victim = image(elsewhere / "victim.png", value=33)
    kept = victim.read_bytes()
    image(photos / "b.png")
    image(photos / "sub" / "c.png")
    (out / "b.png").symlink_to(victim)
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    (out / "a.png").unlink()
    (out / "a.png").symlink_to(victim)  # where an earlier copy was
    result = annotate(photos, "--out", out, "--overwrite")
    assert result.exit_code == 1  # sub/c.png: a symlink in the way
    assert victim.read_bytes() == kept and sorted(p.name for p in elsewhere.iterdir()) == ["victim.png"]
    rows = {r["path"]: r for r in rows_of(out)}
    assert rows["a.png"]["output"] == "a~2.png" and rows["b.png"]["output"] == "b~2.png"
    assert rows["sub/c.png"]["status"] == "error" and "symlink" in rows["sub/c.png"]["message"]
    (out / "report.csv").unlink()
    (out / "report.csv").symlink_to(victim)
    result = annotate(photos, "--out", out, "--resume")
    assert result.exit_code == 2 and "symlink" in result.output and victim.read_bytes() == kept


# --- every input gets its own result ----------------------------------------------------------------

def test_inputs_with_the_same_names_get_distinct_results(tmp_path):
    for folder, value in (("a/photos", 10), ("b/photos", 20), ("c", 30), ("d", 40)):
        image(tmp_path / folder / "x.png", value=value)
    out = tmp_path / "out"
    inputs = [tmp_path / "a/photos", tmp_path / "b/photos", tmp_path / "c/x.png", tmp_path / "d/x.png"]
    assert annotate(*inputs, "--out", out).exit_code == 0
    rows = rows_of(out)
    assert [r["path"] for r in rows] == ["photos/x.png", "photos~2/x.png", "x.png", "x~2.png"]
    assert len({r["output"] for r in rows}) == 4
    values = [int(np.median(cv2.imread(str(out / r["output"])))) for r in rows]
    assert values == sorted(set(values))  # each copy is of its own input (they were drawn 10, 20, 30, 40)
    assert annotate(*inputs, "--out", out, "--resume").exit_code == 0
    assert rows_of(out) == rows


@pytest.mark.parametrize("names, options", [(("img.png", "img.png.jpg"), ("--format", "jpg")),
                                            (("x.pgm", "x.pgm.png"), ())])
def test_names_that_meet_after_a_format_change_stay_apart(tmp_path, names, options):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, name in enumerate(names):
        ok, data = cv2.imencode(".png" if name.endswith(".png") else Path(name).suffix,
                                np.full((40 + 10 * index, 50), 90, np.uint8))
        (folder / name).write_bytes(data.tobytes())
    out = tmp_path / "out"
    assert annotate(folder, "--out", out, *options).exit_code == 0
    rows = rows_of(out)
    assert sorted(r["path"] for r in rows) == sorted(names) and len({r["output"] for r in rows}) == 2
    heights = {r["path"]: cv2.imread(str(out / r["output"])).shape[0] for r in rows}
    assert heights == {names[0]: 40, names[1]: 50}


# --- one bad file never stops the batch ---------------------------------------------------------------

def test_failures_of_one_file_are_error_rows(tmp_path):
    folder = tmp_path / "in"
    image(folder / ("n" * 240 + ".png"))  # a temporary name must not exceed NAME_MAX
    image(folder / ("m" * 248 + ".png"))  # its .jpg copy would: 256 bytes
    write_image(folder / "wide.png", np.full((100, 70000, 3), 128, np.uint8))  # too wide for JPEG
    image(folder / "plain.png")
    out = tmp_path / "out"
    result = annotate(folder, "--out", out, "--format", "jpg")
    assert result.exit_code == 1, result.output
    rows = {r["path"]: r for r in rows_of(out)}
    assert rows["n" * 240 + ".png"]["status"] == "no_face" and rows["plain.png"]["status"] == "no_face"
    assert "File name too long" in rows["m" * 248 + ".png"]["message"]
    assert "cannot encode" in rows["wide.png"]["message"]
    again = annotate(folder, "--out", out, "--format", "jpg", "--resume")
    assert again.exit_code == 1 and rows_of(out) == list(rows.values())


def test_an_image_whose_rows_were_cut_at_a_row_boundary_is_redone(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(MIXED, folder)
    out = tmp_path / "out"
    assert annotate(folder, "--out", out).exit_code == 0
    whole = (out / "report.csv").read_bytes()
    lines = whole.split(b"\r\n")
    assert len(lines) > 4
    (out / "report.csv").write_bytes(b"\r\n".join(lines[:3]) + b"\r\n")  # two of its rows, whole records
    assert annotate(folder, "--out", out, "--resume").exit_code == 0
    assert (out / "report.csv").read_bytes() == whole


def test_one_run_at_a_time_and_damaged_reports_are_refused(tmp_path):
    folder = tmp_path / "in"
    image(folder / "a.png")
    image(folder / "b.png")
    out = tmp_path / "out"
    assert annotate(folder, "--out", out).exit_code == 0
    first = RunState(out)
    first.acquire()  # another run holds the folder
    result = annotate(folder, "--out", out, "--resume")
    first.release()
    assert result.exit_code == 2 and f"pid {os.getpid()}" in result.output
    data = (out / "report.csv").read_bytes()
    first_row_end = data.index(b"\r\n", data.index(b"\r\n") + 2)
    (out / "report.csv").write_bytes(data[:first_row_end - 4] + b"\0\0\0\0" + data[first_row_end:])
    result = annotate(folder, "--out", out, "--resume")
    assert result.exit_code == 2 and "damaged" in result.output


def test_summary_describes_the_whole_report_after_resume(tmp_path):
    folder = tmp_path / "in"
    image(folder / "a.png")
    shutil.copy(MIXED, folder)
    out = tmp_path / "out"
    assert annotate(folder, "--out", out).exit_code == 0
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    image(folder / "z.png")
    assert annotate(folder, "--out", out, "--resume").exit_code == 1
    for expected_processed in (2, 0):
        summary = json.loads((out / "summary.json").read_text())
        rows = rows_of(out)
        assert summary["images"] == len({r["path"] for r in rows}) == 4
        assert summary["faces"] == sum(r["status"] == "ok" for r in rows) and summary["errors"] == 1
        assert summary["processed_this_run"] == expected_processed
        result = annotate(folder, "--out", out, "--resume")
        assert result.exit_code == 1  # the error row is still in the report


def test_overwrite_removes_what_the_previous_run_wrote_and_only_that(tmp_path):
    folder = tmp_path / "in"
    image(folder / "a.png")
    image(folder / "b.png")
    out = tmp_path / "out"
    assert annotate(folder, "--out", out).exit_code == 0
    (folder / "b.png").unlink()
    (out / "notes.txt").write_text("mine")
    assert annotate(folder, "--out", out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [".maskmodel", "a.png", "notes.txt", "report.csv", "report.html", "summary.json"]


# --- no hangs, no orphans, no bombs ------------------------------------------------------------------

def test_a_fifo_is_an_error_row_not_a_hang(tmp_path):
    folder = tmp_path / "in"
    image(folder / "a.png")
    os.mkfifo(folder / "m.jpg")
    os.mkfifo(folder / "v.mp4")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "maskmodel", "annotate", str(folder), "--out", str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    rows = {r["path"]: r for r in rows_of(out)}
    assert "not a regular file (a FIFO)" in rows["m.jpg"]["message"]
    assert "not a regular file" in rows["v.mp4"]["message"] and rows["a.png"]["status"] == "no_face"


def _children(pid):
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_exit_when_the_main_process_dies(tmp_path, sig):
    folder = tmp_path / "in"
    folder.mkdir()
    for photo in crowd_images(40):
        shutil.copy(photo, folder)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "maskmodel", "annotate", str(folder), "--out", str(out), "-q",
                                "--jobs", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ((out / "report.csv").exists() and len(rows_of(out)) > 2) and time.time() < deadline:
        time.sleep(0.1)
    workers = _children(process.pid)
    assert len(workers) >= 2
    process.send_signal(sig)
    process.wait()
    deadline = time.time() + 20
    while any(_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def test_a_folder_that_cannot_be_listed_is_an_error_row(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's permission override")
    base = tmp_path / "base"
    folder = base / "in"
    image(folder / "a.png")
    image(folder / "locked" / "b.png")
    (folder / "locked").chmod(0)
    out = base / "out"
    command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all",
               sys.executable, "-m", "maskmodel", "annotate", str(folder), "--out", str(out), "-q"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    finally:
        (folder / "locked").chmod(0o755)
    assert done.returncode == 1, done.stderr
    rows = {r["path"]: r for r in rows_of(out)}
    assert rows["locked"]["status"] == "error" and "Permission denied" in rows["locked"]["message"]


def test_models_are_checked_once_before_any_worker_and_died_rows_are_retried(tmp_path, model_home):
    folder = tmp_path / "in"
    for name in ("a.png", "b.png", "c.png"):
        image(folder / name)
    record = zoo.weights_file(DEFAULT_FACE_DETECTOR)  # the default detector's file
    cached = model_home / record.file
    good = cached.read_bytes()
    cached.write_bytes(b"truncated")
    out = tmp_path / "out"
    result = annotate(folder, "--out", out, "--jobs", "2")
    assert result.exit_code == 1 and f"expected {record.sha256[:8]}" in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output and not out.exists()
    cached.write_bytes(good)
    assert annotate(folder, "--out", out).exit_code == 0
    rows = rows_of(out)
    rows[0] = {"path": rows[0]["path"], "status": "error", "message": "the worker process died 3 times on this file",
               "rows": "1"}
    with open(out / "report.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    assert "died" in rows_of(out)[0]["message"]
    assert annotate(folder, "--out", out, "--resume").exit_code == 0
    assert sorted(r["status"] for r in rows_of(out)) == ["no_face"] * 3


def test_every_accepted_format_is_sized_before_decoding(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    lossless = b"\x2f" + (15000 - 1 | (15000 - 1) << 14).to_bytes(4, "little") + bytes(8000)
    (folder / "bomb.webp").write_bytes(b"RIFF" + (len(lossless) + 12).to_bytes(4, "little") + b"WEBPVP8L"
                                       + len(lossless).to_bytes(4, "little") + lossless)
    jpeg = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    app0_end = 4 + int.from_bytes(jpeg[4:6], "big")
    jpeg[app0_end:app0_end] = b"\x00"  # one junk byte after APP0
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = (16000).to_bytes(2, "big") * 2
    (folder / "junk.jpg").write_bytes(bytes(jpeg))
    (folder / "huge.ppm").write_bytes(b"P6\n# a comment\n20000 20000\n255\n" + bytes(300))
    (folder / "huge.pgm").write_bytes(b"P5 30000 30000 255\n" + bytes(300))
    tiff = b"II*\x00" + (8).to_bytes(4, "little") + (2).to_bytes(2, "little")
    tiff += b"\x00\x01\x04\x00\x01\x00\x00\x00" + (20000).to_bytes(4, "little")
    tiff += b"\x01\x01\x04\x00\x01\x00\x00\x00" + (20000).to_bytes(4, "little") + bytes(4)
    (folder / "huge.tif").write_bytes(tiff)
    (folder / "huge.jp2").write_bytes(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x2djp2h\x00\x00\x00\x16ihdr"
                                      + (20000).to_bytes(4, "big") * 2 + bytes(40))
    (folder / "huge.gif").write_bytes(b"GIF89a" + (65535).to_bytes(2, "little") * 2 + bytes(40))
    (folder / "mystery.tiff").write_bytes(b"II*\x00" + bytes(4))  # an IFD offset of 0: no size
    out = tmp_path / "out"
    result = annotate(folder, "--out", out)
    assert result.exit_code == 1
    rows = {r["path"]: r["message"] for r in rows_of(out)}
    for name in ("bomb.webp", "junk.jpg", "huge.ppm", "huge.pgm", "huge.tif", "huge.jp2", "huge.gif"):
        assert "more than the limit" in rows[name], (name, rows[name])
    assert "not a recognised image" in rows["mystery.tiff"]


def test_opencv_pixel_limit_is_set_before_cv2_loads():
    code = "import os, maskmodel, cv2; print(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "200000000"


# --- reports that are safe to open ------------------------------------------------------------------

def test_report_cells_cannot_start_a_formula(tmp_path):
    folder = tmp_path / "in"
    names = ["=HYPERLINK(1).png", "+1.png", "-2.png", "@SUM.png", "'quoted.png", "plain.png"]
    for name in names:
        image(folder / name)
    out = tmp_path / "out"
    assert annotate(folder, "--out", out).exit_code == 0
    rows = rows_of(out)
    assert not any(value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())
    assert sorted(original_path(r["path"]) for r in rows) == sorted(names)
    assert all((out / original_path(r["output"])).is_file() for r in rows)
    assert annotate(folder, "--out", out, "--resume").exit_code == 0 and len(rows_of(out)) == len(names)


def test_gifs_are_read_and_other_files_counted(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "anim.gif").write_bytes(cv2.imencode(".gif", np.full((30, 40, 3), 90, np.uint8))[1].tobytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / "raw.cr2").write_bytes(b"raw")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    [row] = rows_of(out)
    assert row["path"] == "anim.gif" and row["status"] == "no_face" and row["width"] == "40"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_files"] == {".cr2": 1, ".txt": 1} and "1 .cr2, 1 .txt" in result.output


def test_symlinked_input_file_keeps_its_given_name(tmp_path):
    target = image(tmp_path / "store" / "IMG_0001.png")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    out = tmp_path / "out"
    assert annotate(link, "--out", out).exit_code == 0
    assert [r["path"] for r in rows_of(out)] == ["link.png"]
    assert stat.S_ISREG(os.lstat(out / "link.png").st_mode)
