"""The Ray engine (a local Ray with 2 CPUs) gives the local engine's report, row for row."""

import csv
import shutil

import pytest
from click.testing import CliRunner

pytest.importorskip("ray")

from cli.main import main  # noqa: E402
from conftest import CROWD_DEV  # noqa: E402


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
