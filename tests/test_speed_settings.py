"""The speed settings of issue 36: CenterFace's first pass, `--jobs auto`, OpenVINO's compiled-model cache."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import FACE_MODELS, crowd_images
from maskmodel.batch.engines import AUTO_MIN_PHOTOS, available_cpus, cgroup_cpu_quota, worker_count
from maskmodel.cli.main import main
from maskmodel.detect.centerface import CenterFaceDetector, smallest_face
from maskmodel.io.imageio import read_image

MODEL = FACE_MODELS / "centerface_bnmerged.onnx"


def test_the_first_pass_decides_per_photo_between_itself_and_the_full_pass():
    cascade = CenterFaceDetector(MODEL, first_pass=384, refine_below=24, backend="opencv")
    first = CenterFaceDetector(MODEL, scales=(384,), first_pass=0, backend="opencv")
    full = CenterFaceDetector(MODEL, first_pass=0, backend="opencv")
    photos = [read_image(path) for path in crowd_images(12)] + [np.full((300, 400, 3), 128, np.uint8)]
    refined = 0
    for photo in photos:
        quick = first.detect(photo)
        small = smallest_face(quick, 384 / max(photo.shape[:2])) < 24
        refined += small
        expected = full.detect(photo) if small else quick
        np.testing.assert_array_equal(cascade.detect(photo), expected)
    assert 0 < refined < len(photos)  # both branches ran: the blank photo (no face) and photos of small faces


def test_smallest_face_is_in_the_pixels_of_the_pass_and_zero_without_faces():
    boxes = np.array([[0, 0, 40, 30, 0.9], [10, 10, 20, 60, 0.8]], np.float32)
    assert smallest_face(boxes, 0.5) == 20.0
    assert smallest_face(np.zeros((0, 5), np.float32), 2.0) == 0.0


def test_jobs_auto_is_one_process_per_cpu_for_batches_and_one_for_a_few_photos():
    cpus = available_cpus()
    assert worker_count("auto", AUTO_MIN_PHOTOS) == cpus
    assert worker_count("auto", AUTO_MIN_PHOTOS - 1) == 1
    assert worker_count(64, 1000) == cpus  # never more processes than CPUs
    assert worker_count(2, 1) == 1  # nor than photos


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota_of_v1_and_v2_files(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == expected


def test_jobs_option_takes_auto_or_a_count(tmp_path):
    photo = str(crowd_images(1)[0])
    for value in ("0", "two"):
        result = CliRunner().invoke(main, ["annotate", photo, "--out", str(tmp_path / value), "--jobs", value])
        assert result.exit_code == 2 and "expected a number of processes (1 or more) or auto" in result.output
    result = CliRunner().invoke(main, ["annotate", photo, "--out", str(tmp_path / "auto"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "auto" / "summary.json").read_text())["jobs"] == 1  # one photo: one process


def test_openvino_keeps_compiled_models_in_maskmodels_cache(tmp_path):
    pytest.importorskip("openvino")
    code = ("import numpy as np; from pathlib import Path; from maskmodel.detect.centerface import CenterFaceDetector; "
            f"CenterFaceDetector(Path({str(MODEL)!r}), backend='openvino').detect(np.zeros((240, 320, 3), np.uint8))")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MASKMODEL_HOME": str(tmp_path)})
    assert any((tmp_path / "openvino").glob("*.blob"))
