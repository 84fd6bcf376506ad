"""Face detector invariants on real crowd photos: mirrored passes and multi-scale merging."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from helpers import crowd_images
from maskmodel.detect.boxes import box_iou, mirror_boxes
from maskmodel.detect.detector_config import PRESET_NAMES, DetectorConfig, create_face_detector
from maskmodel.io.imageio import read_image


@pytest.fixture(scope="module")
def photos():
    return [read_image(path) for path in crowd_images(4)]


def test_mirroring_twice_gives_the_boxes_back():
    boxes = np.array([[10, 20, 50, 70, 0.9], [0, 0, 640, 480, 0.5]], dtype=np.float32)
    mirrored = mirror_boxes(boxes, 640)
    assert mirrored[0].tolist() == [590, 20, 630, 70, pytest.approx(0.9)]
    assert np.array_equal(mirror_boxes(mirrored, 640), boxes)


def test_flip_gives_mirrored_boxes_for_a_mirrored_photo(photos):
    detector = create_face_detector("yunet", flip=True)
    for photo in photos:
        found = detector.detect(photo)
        assert len(found)
        in_mirror = detector.detect(np.ascontiguousarray(photo[:, ::-1]))
        expected = mirror_boxes(found, photo.shape[1])
        assert len(in_mirror) == len(expected)
        assert np.allclose(in_mirror, expected, atol=1e-3)


def test_flip_keeps_every_face_of_the_plain_passes(photos):
    plain, flipped = create_face_detector("yunet"), create_face_detector("yunet", flip=True)
    for photo in photos:
        with_flip = flipped.detect(photo)
        for box in plain.detect(photo):  # kept, or merged into a better box of the mirrored passes
            assert box_iou(box[:4], with_flip[:, :4]).max() >= flipped.nms_threshold - 1e-6


def test_detector_options_on_the_command_line(tmp_path):
    photo = str(crowd_images(1)[0])
    wrong = CliRunner().invoke(main, ["predict", photo, "--face-detector", "ssd", "--flip"])
    assert wrong.exit_code == 2 and "--flip" in wrong.output and "centerface, yunet, centerface-ft and centerface-s detectors only" in wrong.output
    for detector in ("centerface", "yunet"):
        result = CliRunner().invoke(main, ["predict", photo, "--face-detector", detector, "--flip", "--scales",
                                           "640,1024", "--nms-iou", "0.5"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["detector"] == detector and json.loads(result.output)["faces"]


def test_presets_are_the_options_they_stand_for_and_explicit_options_win():
    photo = str(crowd_images(2)[1])

    def faces(*options):
        result = CliRunner().invoke(main, ["predict", photo, "--face-detector", "yunet", *options])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["faces"]

    explicit = ["--scales", "640,1024,1600", "--threshold", "0.7", "--nms-iou", "0.5"]
    assert faces("--preset", "accuracy") == faces(*explicit, "--flip")
    assert faces("--preset", "accuracy", "--no-flip") == faces(*explicit)
    assert faces("--preset", "speed") == faces("--scales", "640")
    assert len(faces("--preset", "accuracy")) > len(faces("--preset", "speed"))
    wrong = CliRunner().invoke(main, ["predict", photo, "--face-detector", "ssd", "--preset", "accuracy"])
    assert wrong.exit_code == 2 and "--preset" in wrong.output


def test_centerface_presets_are_the_options_they_stand_for():
    photo = str(crowd_images(2)[1])

    def faces(*options):
        result = CliRunner().invoke(main, ["predict", photo, *options])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["faces"]

    flags = {"score_threshold": "--threshold", "nms_threshold": "--nms-iou", "scales": "--scales",
             "first_pass": "--first-pass"}
    for preset in PRESET_NAMES:
        config = DetectorConfig.preset(preset)
        options = config.options()
        arguments = ["--face-detector", config.name, "--flip" if options.get("flip") else "--no-flip"]
        for key, value in options.items():
            if key != "flip":
                arguments += [flags[key], ",".join(map(str, value)) if key == "scales" else str(value)]
        assert faces("--preset", preset) == faces(*arguments), preset
