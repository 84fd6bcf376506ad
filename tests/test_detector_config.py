"""`DetectorConfig` (one checked record of a detector and its settings) and the typed zoo records."""

import dataclasses
import json
import pickle

import pytest

import maskmodel
from helpers import FACE_MODELS, crowd_images
from maskmodel import zoo
from maskmodel.detect.centerface import CenterFaceDetector
from maskmodel.detect.detector_config import DETECTOR_CLASSES, DetectorConfig, DetectorConfigError
from maskmodel.detect.faces import SSDDetector, YuNetDetector
from maskmodel.io.imageio import read_image


def test_presets_are_data_beside_each_detector_and_overrides_win():
    for name, detector in (("centerface", CenterFaceDetector), ("yunet", YuNetDetector)):
        for preset, settings in detector.PRESETS.items():
            assert DetectorConfig.preset(preset, name).options() == settings
    config = DetectorConfig.preset("accuracy", name="yunet", score_threshold=0.8, flip=None)
    assert config.score_threshold == 0.8 and config.flip is True and config.scales == (640, 1024, 1600)
    assert DetectorConfig.preset("default", "ssd") == DetectorConfig("ssd")
    with pytest.raises(DetectorConfigError, match=r"Expected preset in \('default',\) .*Received: preset='speed'"):
        DetectorConfig.preset("speed", "ssd")


@pytest.mark.parametrize("settings, field, message", [
    ({"name": "mtcnn"}, "name", "Expected name in"),
    ({"scales": (16,)}, "scales", "scales of 32 to 8192 px"),
    ({"scales": (100_000,)}, "scales", "scales of 32 to 8192 px"),
    ({"scales": ()}, "scales", "1 to 8 scales"),
    ({"score_threshold": 1.5}, "score_threshold", r"in \[0, 1\]"),
    ({"nms_threshold": 0.0}, "nms_threshold", r"in \(0, 1\]"),
    ({"name": "ssd", "flip": True}, "flip", "applies to the centerface, yunet, centerface-ft and centerface-s detectors only"),
    ({"name": "haar", "scales": (640,)}, "scales", "applies to the centerface, yunet, centerface-ft and centerface-s detectors only"),
])
def test_bad_settings_fail_when_the_config_is_made(settings, field, message):
    with pytest.raises(DetectorConfigError, match=message) as error:
        DetectorConfig(**settings)
    assert error.value.field == field and "Received:" in str(error.value)
    assert isinstance(error.value, maskmodel.UsageError) and isinstance(error.value, ValueError)


def test_a_config_is_frozen_picklable_and_resolves_the_detector_defaults():
    config = DetectorConfig("yunet", scales=[640])
    assert config.scales == (640,) and pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.flip = True
    assert config.options() == {"scales": (640,)}
    assert config.resolved() == {"scales": (640,), "score_threshold": 0.6, "nms_threshold": 0.3, "flip": False}
    assert DetectorConfig("ssd").resolved() == {"score_threshold": 0.5}


def test_build_runs_the_settings_and_mask_detector_takes_a_config():
    image = read_image(crowd_images(1)[0])
    built = DetectorConfig("yunet", scales=(640,), score_threshold=0.9).build()
    assert isinstance(built, YuNetDetector) and built.scales == (640,) and built.score_threshold == 0.9
    assert (built.detect(image)[:, 4] >= 0.9).all()
    detector = maskmodel.MaskDetector(DetectorConfig("ssd", score_threshold=0.7))
    assert isinstance(detector.face_detector, SSDDetector) and detector.face_detector.score_threshold == 0.7
    with pytest.raises(ValueError, match="only with a detector's short name"):
        maskmodel.MaskDetector(DetectorConfig("ssd"), score_threshold=0.7)


def test_detector_aliases_are_manifest_data_and_match_the_classes():
    aliases = zoo.detector_aliases()
    assert set(aliases) == set(DETECTOR_CLASSES)
    assert aliases["yunet"] == "yunet-2026may" and aliases["ssd"] == "opencv-ssd-uint8"
    manifest = json.loads((zoo.package_weights_dir() / "manifest.json").read_text())
    assert all(manifest["models"][model]["alias"] == alias for alias, model in aliases.items())
    assert maskmodel.model_info("yunet") == maskmodel.model_info("yunet-2026may")


def test_load_honours_version_and_path_for_detectors(tmp_path):
    assert isinstance(maskmodel.load("yunet"), YuNetDetector)
    good = FACE_MODELS / "face_detection_yunet_2026may.onnx"
    assert isinstance(maskmodel.load("yunet-2026may", version="1.0.0", path=good), YuNetDetector)
    with pytest.raises(zoo.ModelNotFoundError, match="Unknown version '9.9.9' of 'yunet-2026may'"):
        maskmodel.load("yunet", version="9.9.9")
    bad = tmp_path / "yunet.onnx"
    bad.write_bytes(b"not the model")
    with pytest.raises(zoo.ChecksumError):
        maskmodel.load("yunet", path=bad)
    with pytest.raises(zoo.ChecksumError):
        DetectorConfig("yunet", path=str(bad)).build()


def test_model_info_is_a_typed_frozen_view_of_the_manifest():
    manifest = zoo.manifest()["models"]
    for name in maskmodel.list_models():
        for info in zoo.model_versions(name):
            assert isinstance(info, maskmodel.ModelVersion) and info.spec == f"{name}@{info.version}"
            assert info.is_default == (info.version == manifest[name]["default"])
            record = info.to_dict()
            for key in ("name", "version", "task", "alias", "default"):
                record.pop(key)
            assert record == manifest[name]["versions"][info.version], info.spec  # nothing lost or added
            if info.task == "classification":
                assert info.classes and info.input["size"] and info.metrics and info.alias is None
    info = maskmodel.model_info("mask-mobilenetv2-0.35")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.version = "9.9.9"
    info.metrics.clear()  # a copy: the manifest itself is untouched
    assert maskmodel.model_info("mask-mobilenetv2-0.35").metrics


def test_fast_and_speed_run_the_student_unless_a_detector_is_named():
    """Issue 43: the presets chosen again on bench.frontier's frontier (docs/benchmarks.md, 2026-12-07)."""
    fast, speed = DetectorConfig.preset("fast"), DetectorConfig.preset("speed")
    assert (fast.name, fast.scales, fast.first_pass) == ("centerface-s", None, None)  # 384 px, then 800 where small
    assert (speed.name, speed.scales) == ("centerface-s", (1024,))
    assert DetectorConfig.preset("default").name == "centerface"
    named = DetectorConfig.preset("fast", "centerface")
    assert (named.name, named.scales, named.first_pass) == ("centerface", (384,), 0)
