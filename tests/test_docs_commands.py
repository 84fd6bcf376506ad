"""The `maskmodel` commands in the README's and docs/' bash blocks run as written (issue 37), block by
block in a fresh folder laid out as the docs assume: `../shared/` beside it (with a few of its photos),
and the example inputs the usage lines name (`photos/`, `more.jpg`, `crowd/`, `my_voc_set/`,
`my_data/test/`, ...) made of real photos. Lines of a block run in order, so they must compose.

Not run here, each for the reason given in `NOT_HERE` (and checked elsewhere where it can be):
training (minutes; tests/test_train.py runs `train --smoke`), a camera, a Ray cluster on S3
(tests/test_ray.py), downloads (tests/test_download.py), and syntax lines with placeholders."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import COVID, CROWD_DEV, FACE_MODELS, ROOT, SHARED
from maskmodel.cli.main import main

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_HERE = {
    "maskmodel train": "training takes minutes (tests/test_train.py runs train --smoke)",
    "--model runs/": "needs a trained run",
    "--face-detector runs/": "needs a trained detector run (tests/test_train_detector.py annotates with one)",
    "export runs/": "needs a trained run",
    "--source 0": "needs a camera",
    "--source clip.mp4": "needs a video file named clip.mp4",
    "--engine ray": "needs a Ray cluster and S3 (tests/test_ray.py)",
    "models download": "needs the internet (tests/test_download.py)",
    "INPUT...": "a syntax line",
    "--from DIR": "a syntax line",
    "my_photos/": "a placeholder for the reader's own photos",
}
PHOTOS = ["maksssksksss148.png", "maksssksksss230.png", "maksssksksss363.png"]


def _commands(block: str) -> list[str]:
    """The `maskmodel ...` commands of a bash block, continuation lines joined, comments cut."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.split(r"\s+#\s", line)[0]
        commands += [part.strip() for part in line.split("&&") if part.strip().startswith("maskmodel ")]
    return commands


def _runs_here(command: str) -> bool:
    return not any(key in command for key in NOT_HERE)


ALL_BLOCKS = [(page.name, index, _commands(block)) for page in PAGES
              for index, block in enumerate(re.findall(r"```bash\n(.*?)```", page.read_text(), re.S))]
BLOCKS = [(page, index, [c for c in commands if _runs_here(c)]) for page, index, commands in ALL_BLOCKS
          if any(_runs_here(c) for c in commands)]


def _sandbox(root: Path) -> Path:
    """A project folder with `../shared` (models, and crowd-dev with three photos) and the usage lines' inputs."""
    shared, project = root / "shared", root / "project"
    (shared / "models").mkdir(parents=True)
    (shared / "models" / "face").symlink_to(FACE_MODELS)
    (shared / "models" / "keras").symlink_to(SHARED / "models" / "keras")
    for folder in ("images", "annotations"):
        (shared / "datasets" / "crowd-dev" / folder).mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(CROWD_DEV / "images" / name, shared / "datasets" / "crowd-dev" / "images" / name)
        shutil.copy(CROWD_DEV / "annotations" / name.replace(".png", ".xml"),
                    shared / "datasets" / "crowd-dev" / "annotations" / name.replace(".png", ".xml"))
    for folder in ("photos", "crowd", "more"):
        (project / folder).mkdir(parents=True)
    for name in PHOTOS[:2]:
        shutil.copy(CROWD_DEV / "images" / name, project / "photos" / name)
    shutil.copy(CROWD_DEV / "images" / PHOTOS[2], project / "crowd" / PHOTOS[2])
    shutil.copy(CROWD_DEV / "images" / PHOTOS[2], project / "more" / PHOTOS[2])
    shutil.copy(CROWD_DEV / "images" / PHOTOS[0], project / "more.jpg")
    shutil.copy(CROWD_DEV / "images" / PHOTOS[0], project / "photo.jpg")
    shutil.copytree(shared / "datasets" / "crowd-dev", project / "my_voc_set")
    for label in ("with_mask", "without_mask"):
        (project / "my_data" / "test" / label).mkdir(parents=True)
        for path in sorted((COVID / "test" / label).iterdir())[:2]:
            shutil.copy(path, project / "my_data" / "test" / label / path.name)
    return project


@pytest.mark.parametrize("page, index, commands", BLOCKS, ids=[f"{page}-{index}" for page, index, _ in BLOCKS])
def test_docs_commands_run_as_written(page, index, commands, tmp_path, monkeypatch):
    monkeypatch.chdir(_sandbox(tmp_path))
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(main, shlex.split(command)[1:], input="")
        assert result.exit_code == 0, f"{page}: {command}\n{result.output[-2000:]}"
        assert "Traceback" not in result.output


def test_the_commands_that_matter_are_run():
    """The set-up lines and the usage block are among what runs (`NOT_HERE` leaves out only the kinds of
    line it names)."""
    runnable = [command for _, _, commands in BLOCKS for command in commands]
    assert "maskmodel annotate ../shared/datasets/crowd-dev/images --out annotated" in runnable
    assert any(command.startswith("maskmodel evaluate detect run/") for command in runnable)
    assert any(command.startswith("maskmodel export mask-mobilenetv2-0.35") for command in runnable)
    assert len(runnable) >= 25
