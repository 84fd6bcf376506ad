"""`DetectorConfig`: which face detector runs, and with which settings, in one frozen record.

Each detector class keeps its own defaults (its `__init__`'s keyword defaults) and its named settings
(`PRESETS`, measured in docs/benchmarks.md); a config names the detector and only the settings that
differ, and is checked once, when it is made. The CLI builds one from its options, `AnnotateSettings`
carries one to the workers, and `MaskDetector` accepts one. Adding an option to a detector means
adding it to that detector's `__init__` and a field here.

The short names (`centerface`, `yunet`, `ssd`, `haar`) are the manifest's detector aliases; each
names the class that runs the model's files (`DETECTOR_CLASSES`).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, fields
from pathlib import Path

from maskmodel.detect.centerface import CenterFaceDetector
from maskmodel.detect.faces import FaceDetector, HaarDetector, SSDDetector, YuNetDetector
from maskmodel.errors import UsageError
from maskmodel.runtime.opencv import FORMAT_CAPABILITY, OpenCVCapabilityError, has, missing_message
from maskmodel.zoo.downloads import weights_path
from maskmodel.zoo.local_detectors import detector_card, detector_file
from maskmodel.zoo.registry import DEFAULT_FACE_DETECTOR, model_info

DETECTOR_CLASSES: dict[str, type] = {
    "centerface": CenterFaceDetector, "yunet": YuNetDetector, "ssd": SSDDetector, "haar": HaarDetector,
    "centerface-ft": CenterFaceDetector,  # the published CenterFace fine-tuned here (centerface-finetuned)
    "centerface-s": CenterFaceDetector,  # a width-0.35 student of it trained here (centerface-small)
}
PRESET_NAMES = ("fast", "speed", "default", "accuracy")
# The detector a preset runs when none is named, and presets of one detector that differ from its class's: chosen
# on the frontier of `python -m bench.frontier` (docs/benchmarks.md, 2026-12-07). The width-0.35 student with
# CenterFace's first pass (384 px, then 800 px where faces are small) beat CenterFace at 384 px on speed and
# accuracy (fast), and with 1024 px where faces are small it beat CenterFace at 512 px on both (speed).
PRESET_DETECTORS = {"fast": "centerface-s", "speed": "centerface-s"}
DETECTOR_PRESETS = {"centerface-s": {"fast": {}, "speed": {"scales": (1024,)}}}
LOCAL = "local"  # the version of a detector trained here (`path`: its `maskmodel train-detector` run folder)
_NOT_OPTIONS = frozenset({"name", "version", "path"})  # fields that choose the model, not its settings
MIN_SCALE = 32
MAX_SCALE, MAX_PASSES = 8192, 8  # bounds the memory of a detection pass and the work per image


class DetectorConfigError(UsageError, ValueError):
    """A detector setting that is not valid; `field` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def missing_capability(name: str, version: str | None = None) -> str | None:
    """Why face detector `name` (its default version if `version` is None) cannot run with the installed
    OpenCV, in one line naming the remedy; `None` when it can. The detector class's `REQUIRES` and the
    model files' formats (a TensorFlow `.pb` needs OpenCV's TensorFlow importer) say what it needs."""
    info = None if version == LOCAL else model_info(name, version)
    formats = info.files if info else ("onnx",)
    needed = [*_detector_class(name).REQUIRES, *(FORMAT_CAPABILITY[f] for f in formats if f in FORMAT_CAPABILITY)]
    what = f"The {name} face detector" + (f" ({info.spec if info else 'trained here'})" if version else "")
    return next((missing_message(capability, what) for capability in needed if not has(capability)), None)


def available_detectors() -> list[str]:
    """The short names of the face detectors that run with this OpenCV (`missing_capability` says why
    the others do not: Haar needs a cascade classifier, which OpenCV 5's opencv-python lacks)."""
    return [name for name in DETECTOR_CLASSES if missing_capability(name) is None]


def _detector_class(name: str) -> type:
    if name not in DETECTOR_CLASSES:
        raise DetectorConfigError("name", f"Expected name in {sorted(DETECTOR_CLASSES)}. Received: name={name!r}")
    return DETECTOR_CLASSES[name]


def _parameters(name: str) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(DETECTOR_CLASSES[name].__init__).parameters)


@dataclass(frozen=True)
class DetectorConfig:
    """A face detector and its settings; `None` leaves a setting at the detector's default.

    Args:
        name: `"centerface"` (the default), `"yunet"`, `"ssd"` or `"haar"`.
        score_threshold: minimum face score, 0..1.
        scales: longer image side, in pixels, of each detection pass (centerface, yunet).
        flip: also detect in the mirrored image (centerface, yunet).
        nms_threshold: IoU above which overlapping boxes are merged, (0, 1] (centerface, yunet).
        version: zoo version of the detector's model; its default version if `None`; `"local"` for a detector
            trained here (`path` is then its `maskmodel train-detector` run folder).
        path: a local copy of the model's (first) file, checked against the manifest's sha256; with version
            `"local"`, the run folder, its file checked against the run's card.
        first_pass: longer image side of a cheap first pass, the passes of `scales` only where it finds a
            face smaller than `refine_below` px or none (centerface); `0`: no first pass.
        refine_below: that first pass's smallest face, in its pixels, that sends a photo to the full passes
            (centerface).

    Raises:
        DetectorConfigError: an unknown detector, a value out of range, or a setting the detector
            does not have.

    Example:
        `DetectorConfig.preset("accuracy", name="yunet", score_threshold=0.8)`
    """

    name: str = DEFAULT_FACE_DETECTOR
    score_threshold: float | None = None
    scales: tuple[int | None, ...] | None = None
    flip: bool | None = None
    nms_threshold: float | None = None
    version: str | None = None
    path: str | None = None
    first_pass: int | None = None
    refine_below: float | None = None

    def __post_init__(self) -> None:
        _detector_class(self.name)
        if self.version == LOCAL:
            if self.path is None:
                raise DetectorConfigError("path", "a detector of version 'local' needs path: its run folder")
            held = detector_card(self.path)["detector"]
            if held != self.name:
                raise DetectorConfigError("name", f"{self.path} holds a {held} detector, not {self.name}")
        if self.scales is not None:
            object.__setattr__(self, "scales", tuple(self.scales))
            if not self.scales or len(self.scales) > MAX_PASSES or any(
                    s is not None and (not isinstance(s, int) or not MIN_SCALE <= s <= MAX_SCALE) for s in self.scales):
                raise DetectorConfigError("scales", f"Expected 1 to {MAX_PASSES} scales of {MIN_SCALE} to {MAX_SCALE} px "
                                                    f"(None: the native size). Received: scales={self.scales!r}")
        if self.first_pass is not None and self.first_pass != 0 and not (
                isinstance(self.first_pass, int) and MIN_SCALE <= self.first_pass <= MAX_SCALE):
            raise DetectorConfigError("first_pass", f"Expected first_pass 0 (none) or {MIN_SCALE} to {MAX_SCALE} px. "
                                                      f"Received: first_pass={self.first_pass!r}")
        if self.refine_below is not None and not 0 <= self.refine_below <= MAX_SCALE:
            raise DetectorConfigError("refine_below", f"Expected refine_below in [0, {MAX_SCALE}] px. "
                                                      f"Received: refine_below={self.refine_below!r}")
        if self.score_threshold is not None and not 0 <= self.score_threshold <= 1:
            raise DetectorConfigError("score_threshold", "Expected score_threshold in [0, 1]. Received: "
                                                         f"score_threshold={self.score_threshold!r}")
        if self.nms_threshold is not None and not 0 < self.nms_threshold <= 1:
            raise DetectorConfigError("nms_threshold", "Expected nms_threshold in (0, 1]. Received: "
                                                       f"nms_threshold={self.nms_threshold!r}")
        for key, value in self.options().items():
            if key not in _parameters(self.name):
                having = [name for name in DETECTOR_CLASSES if key in _parameters(name)]
                names = ", ".join(having[:-1]) + f" and {having[-1]}" if len(having) > 1 else having[0]
                raise DetectorConfigError(key, f"{key} applies to the {names} detectors only. "
                                               f"Received: name={self.name!r}, {key}={value!r}")

    @classmethod
    def trained(cls, run: str | os.PathLike, preset: str = "default", **overrides) -> DetectorConfig:
        """The detector of a `maskmodel train-detector` run folder, with a preset's settings and `overrides`."""
        name = detector_card(run)["detector"]
        return cls.preset(preset, name, version=LOCAL, path=str(Path(run).resolve()), **overrides)

    @classmethod
    def preset(cls, preset: str = "default", name: str | None = None, **overrides) -> DetectorConfig:
        """The named settings of a detector (`"fast"`, `"speed"`, `"default"`, `"accuracy"`; see the detector's
        `PRESETS` and `DETECTOR_PRESETS`), with `overrides` (those not `None`) on top. Without a `name`, the
        preset's detector (`PRESET_DETECTORS`: `centerface-s` for fast and speed, else `centerface`)."""
        name = name or PRESET_DETECTORS.get(preset, DEFAULT_FACE_DETECTOR)
        presets = {"default": {}, **getattr(_detector_class(name), "PRESETS", {}), **DETECTOR_PRESETS.get(name, {})}
        if preset not in presets:
            raise DetectorConfigError("preset", f"Expected preset in {tuple(presets)} for the {name} detector. "
                                                f"Received: preset={preset!r}")
        given = {key: value for key, value in overrides.items() if value is not None}
        return cls(name=name, **{**presets[preset], **given})

    def model_spec(self) -> str:
        """Which model runs: `name@version` of the zoo, or a trained detector's folder and sha256."""
        if self.version == LOCAL:
            return f"{self.path}@sha256:{detector_card(self.path)['files']['onnx']['sha256']}"
        return model_info(self.name, self.version).spec

    def model_settings(self) -> dict:
        """The settings the model itself comes with (its manifest record's or its card's `settings`), which a
        setting given here overrides."""
        settings = detector_card(self.path).get("settings", {}) if self.version == LOCAL \
            else model_info(self.name, self.version).settings
        return {key: tuple(value) if isinstance(value, list) else value for key, value in settings.items()}

    def options(self) -> dict:
        """The settings given (not `None`), as keyword arguments of the detector class."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in _NOT_OPTIONS and getattr(self, f.name) is not None}

    def resolved(self) -> dict:
        """Every setting of the detector, the detector's defaults filled in (for records of a run)."""
        settings = {f.name for f in fields(self)} - _NOT_OPTIONS
        defaults = {key: p.default for key, p in _parameters(self.name).items() if key in settings}
        return {**defaults, **self.model_settings(), **self.options()}

    def build(self, backend: str = "auto", precision: str = "auto") -> FaceDetector:
        """The detector, its model files resolved by the zoo (installed, cached or downloaded, and checked).
        `backend` and `precision` choose the runtime of its ONNX network (`maskmodel.runtime.open_network`)
        where the detector runs one (CenterFace, the SSD); YuNet and Haar run inside OpenCV.

        Raises:
            OpenCVCapabilityError: the installed OpenCV cannot run this detector (the message names the remedy).
        """
        problem = missing_capability(self.name, self.version)
        if problem:
            raise OpenCVCapabilityError(problem)
        if self.version == LOCAL:
            files = [detector_file(self.path)]
        else:
            info = model_info(self.name, self.version)
            files = [weights_path(info.name, info.version, format, self.path if index == 0 else None)
                     for index, format in enumerate(info.files)]
        runtime = {key: value for key, value in (("backend", backend), ("precision", precision))
                   if key in _parameters(self.name)}
        return DETECTOR_CLASSES[self.name](*files, **{**self.model_settings(), **self.options()}, **runtime)


def create_face_detector(name: str = DEFAULT_FACE_DETECTOR, **settings) -> FaceDetector:
    """A face detector by short name, with settings as `DetectorConfig` fields
    (`create_face_detector("yunet", scales=(640,))`)."""
    return DetectorConfig(name, **settings).build()


def one_face_detector(name: str = "yunet") -> FaceDetector:
    """The detector as used to cut one face per image (training crops, classification folders).

    YuNet in a single pass at 640 px (these images hold one large face; the classifiers up to
    mask-mobilenetv2-0.35@2.0.0 were trained on crops cut this way); another detector with its default
    settings (3.0.0 and 4.0.0: CenterFace, `maskmodel train`'s default).
    """
    return create_face_detector(name, **({"scales": (640,)} if name == "yunet" else {}))
