"""The Ray engine (a local Ray with 2 CPUs) gives the local engine's report, row for row."""

import csv
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("ray")

from maskmodel.cli.main import main  # noqa: E402
from helpers import CROWD_DEV, upload_tree  # noqa: E402


def read(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_ray_engine_matches_local_engine(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for photo in sorted((CROWD_DEV / "images").glob("*.png"))[:5]:
        shutil.copy(photo, folder / "sub" / photo.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    local = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(tmp_path / "local"), "-q", "--jobs", "2"])
    ray = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(tmp_path / "ray"), "-q", "--engine", "ray",
                                    "--num-cpus", "2"])
    assert local.exit_code == ray.exit_code == 1  # the broken file, in both
    assert read(tmp_path / "ray" / "report.csv") == read(tmp_path / "local" / "report.csv")
    for photo in (folder / "sub").iterdir():
        assert (tmp_path / "ray" / "sub" / photo.name).read_bytes() == (tmp_path / "local" / "sub" / photo.name).read_bytes()


def test_resume_across_engines(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photos = sorted((CROWD_DEV / "images").glob("*.png"))[:4]
    for photo in photos[:2]:
        shutil.copy(photo, folder / photo.name)
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out), "-q"]).exit_code == 0
    for photo in photos[2:]:
        shutil.copy(photo, folder / photo.name)
    resumed = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(out), "-q", "--resume", "--engine", "ray",
                                        "--num-cpus", "2"])
    assert resumed.exit_code == 0, resumed.output
    paths = [r["path"] for r in read(out / "report.csv")]
    assert sorted(set(paths)) == sorted(p.name for p in photos)
    assert len({p: None for p in paths}) == 4


def test_dead_workers_are_replaced_and_their_images_retried(tmp_path):
    """A worker dying once is invisible in the report; a file that kills its worker every time ends
    as an error row, and every other image is reported as the local engine reports it."""
    import ray

    from maskmodel.batch.run import AnnotateSettings, annotate
    from maskmodel.batch.distributed import MAX_ATTEMPTS

    folder = tmp_path / "in"
    folder.mkdir()
    photos = sorted((CROWD_DEV / "images").glob("*.png"))[:6]
    for photo in photos[:5]:
        shutil.copy(photo, folder / photo.name)
    shutil.copy(photos[5], folder / "crash-once.png")
    shutil.copy(photos[5], folder / "crash-always.png")
    markers = tmp_path / "markers"
    markers.mkdir()
    local = AnnotateSettings(out_dir=str(tmp_path / "local"))
    annotate([folder], local, jobs=2, exclude=("crash-always.png",))
    tests = str(Path(__file__).parent)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={
        "env_vars": {"PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
                     "CRASH_MARKERS": str(markers)},
        "worker_process_setup_hook": "ray_hooks.crash_on_marked_files"})
    try:
        summary = annotate([folder], AnnotateSettings(out_dir=str(tmp_path / "ray")), engine="ray")
    finally:
        ray.shutdown()
    assert (markers / "crash-once.png").exists()  # it did kill a worker
    report = read(tmp_path / "ray" / "report.csv")
    crashed = [row for row in report if row["path"] == "crash-always.png"]
    assert [row["status"] for row in crashed] == ["error"]
    assert f"died {MAX_ATTEMPTS} times" in crashed[0]["message"]
    assert [row for row in report if row not in crashed] == read(tmp_path / "local" / "report.csv")
    assert len(summary.errors) == 1


def test_ray_workers_read_from_and_write_to_s3(tmp_path, s3_uri):
    """The actors read the photos from one S3 folder and write the annotated copies to another; the
    report is uploaded there, and all is as a local run on the same files."""
    import pyarrow.fs as pafs

    folder = tmp_path / "in"
    folder.mkdir()
    for photo in sorted((CROWD_DEV / "images").glob("*.png"))[:4]:
        shutil.copy(photo, folder / photo.name)
    upload_tree(folder, s3_uri("ray-in"))
    local = CliRunner().invoke(main, ["annotate", str(folder), "--out", str(tmp_path / "local"), "-q"])
    uri = s3_uri("ray-run")
    remote = CliRunner().invoke(main, ["annotate", s3_uri("ray-in"), "--out", uri, "-q", "--engine", "ray",
                                       "--num-cpus", "2"])
    assert local.exit_code == remote.exit_code == 0, remote.output
    filesystem, root = pafs.FileSystem.from_uri(uri)
    report = filesystem.open_input_stream(f"{root}/report.csv").read()
    assert report == (tmp_path / "local" / "report.csv").read_bytes()
    for photo in folder.iterdir():
        copy = filesystem.open_input_stream(f"{root}/{photo.name}").read()
        assert copy == (tmp_path / "local" / photo.name).read_bytes()


def test_ray_engine_prints_no_info_or_deprecation_lines(tmp_path):
    """Issue 44 (9): `--engine ray` printed 19 stderr lines (Ray Data's INFO and progress lines, a deprecation
    warning about the `concurrency` argument maskmodel passed)."""
    import subprocess
    import sys

    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted((CROWD_DEV / "images").glob("*.png"))[:3]:
        shutil.copyfile(source, photos / source.name)
    result = subprocess.run([sys.executable, "-m", "maskmodel", "annotate", str(photos), "--out", str(tmp_path / "out"),
                             "--engine", "ray", "-q"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [line for line in result.stderr.splitlines() if " INFO " in line or "deprecated" in line], result.stderr
