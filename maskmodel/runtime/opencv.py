"""What the installed OpenCV can do: the one place that checks for calls that depend on its build or version.

OpenCV's Python packages differ by version and flavour: OpenCV 5.0 removed the Caffe importer and 5.1
the TensorFlow importer; OpenCV 5's `opencv-python` has no cascade classifier and no `cv2.data` (its
`opencv-contrib-python` has both); `cv2.FaceDetectorYN` appeared in 4.5.4; DNN engines in 5.0; video
writing depends on the codecs of the build. Code that needs one of these asks `require(name)`, which
raises `OpenCVCapabilityError` with one line naming the remedy, instead of failing with an
`AttributeError` deep inside a call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2

from maskmodel.errors import UsageError

_CONTRIB = ("pip uninstall -y opencv-python opencv-python-headless && pip install "
            "opencv-contrib-python=={version}.* (one OpenCV package per environment: they share the cv2 module)")


class OpenCVCapabilityError(UsageError, RuntimeError):
    """The installed OpenCV lacks something a model or option needs; the message names the remedy."""


@dataclass(frozen=True)
class Capability:
    """A feature some OpenCV builds have: how to test for it, and what a user can do without it."""

    name: str
    description: str
    present: Callable[[], bool]
    remedy: str


def _log_functions() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """OpenCV's log level getter and setter: `cv2.utils.logging` (5.x) or `cv2.getLogLevel` (4.x)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None and hasattr(logging, "setLogLevel"):
        return logging.getLogLevel, logging.setLogLevel
    if hasattr(cv2, "setLogLevel") and hasattr(cv2, "getLogLevel"):
        return cv2.getLogLevel, cv2.setLogLevel
    return None


def _video_writer() -> bool:
    return hasattr(cv2, "VideoWriter") and hasattr(cv2, "VideoWriter_fourcc")


CAPABILITIES: dict[str, Capability] = {capability.name: capability for capability in (
    Capability("onnx_importer", "cv2.dnn.readNetFromONNX", lambda: hasattr(cv2.dnn, "readNetFromONNX"),
               "pip install 'opencv-python>=4.8'"),
    Capability("tflite_importer", "cv2.dnn.readNetFromTFLite", lambda: hasattr(cv2.dnn, "readNetFromTFLite"),
               "pip install 'opencv-python>=4.8'"),
    Capability("tensorflow_importer", "cv2.dnn.readNetFromTensorflow (removed in OpenCV 5.1)",
               lambda: hasattr(cv2.dnn, "readNetFromTensorflow"),
               "use the model's ONNX version (the zoo's default), or pip install 'opencv-python<5.1'"),
    Capability("caffe_importer", "cv2.dnn.readNetFromCaffe (removed in OpenCV 5.0)",
               lambda: hasattr(cv2.dnn, "readNetFromCaffe"), "pip install 'opencv-python<5'"),
    Capability("dnn_engines", "cv2.dnn.ENGINE_NEW / ENGINE_CLASSIC (OpenCV 5)",
               lambda: hasattr(cv2.dnn, "ENGINE_NEW") and hasattr(cv2.dnn, "ENGINE_CLASSIC"),
               "use engine='auto' (OpenCV 4 has one DNN engine)"),
    Capability("face_detector_yn", "cv2.FaceDetectorYN (OpenCV 4.5.4 and later)",
               lambda: hasattr(cv2, "FaceDetectorYN"), "pip install 'opencv-python>=4.8'"),
    Capability("cascade_classifier", "cv2.CascadeClassifier and its data files (cv2.data)",
               lambda: hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data"), _CONTRIB),
    Capability("log_level", "a log level setting (cv2.utils.logging or cv2.setLogLevel)",
               lambda: _log_functions() is not None, "pip install 'opencv-python>=4.8'"),
    Capability("video_writer", "cv2.VideoWriter", _video_writer, "pip install opencv-python (a build with videoio)"),
)}


# What a model file of each format needs to be read (keys are the manifest's file formats).
FORMAT_CAPABILITY = {"onnx": "onnx_importer", "tflite": "tflite_importer", "pb": "tensorflow_importer",
                     "caffemodel": "caffe_importer"}


def has(name: str) -> bool:
    """Whether the installed OpenCV has capability `name` (a key of `CAPABILITIES`)."""
    return CAPABILITIES[name].present()


def missing_message(name: str, needed_for: str) -> str:
    """One line: what is missing, for what, and the remedy."""
    capability = CAPABILITIES[name]
    remedy = capability.remedy.format(version=cv2.__version__.split("-")[0])
    return f"{needed_for} needs {capability.description}, which OpenCV {cv2.__version__} lacks: {remedy}"


def require(name: str, needed_for: str) -> None:
    """Raise `OpenCVCapabilityError` (one line, with the remedy) if capability `name` is missing."""
    if not has(name):
        raise OpenCVCapabilityError(missing_message(name, needed_for))


LOG_LEVEL_SILENT, LOG_LEVEL_ERROR = 0, 2  # OpenCV's cv::utils::logging::LOG_LEVEL_SILENT and LOG_LEVEL_ERROR


@contextmanager
def quiet_opencv(level: int = LOG_LEVEL_ERROR) -> Iterator[None]:
    """Silence OpenCV's log below `level` meanwhile (by default below errors: OpenCV 5 warns that its new DNN
    engine ignores target settings, once per model and process); nothing to silence where OpenCV has no
    setting."""
    functions = _log_functions()
    if functions is None:
        yield
        return
    get_level, set_level = functions
    previous = get_level()
    set_level(level)
    try:
        yield
    finally:
        set_level(previous)


def silence_opencv() -> None:
    """Show only OpenCV's errors from now on (not the DNN engine's warnings, such as OpenCV 5's
    `setPreferableTarget Targets are not supported by the new graph engine`); nothing to do where
    OpenCV has no log level setting."""
    functions = _log_functions()
    if functions is not None:
        functions[1](LOG_LEVEL_ERROR)


def gui_framework() -> str | None:
    """The window toolkit of this OpenCV build (QT5, GTK3, COCOA, WIN32UI...), `None` for a headless one."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "GUI":
            return None if value.strip().upper() in ("", "NONE") else value.strip()
    return None


def display_problem() -> str | None:
    """Why `cv2.imshow` cannot open a window here, in a few words, or `None` when it can: a headless
    build, or on Linux no display to connect to (OpenCV's Qt aborts the whole process there, uncatchably).
    A Qt platform chosen in QT_QPA_PLATFORM (such as offscreen) is left to Qt."""
    if gui_framework() is None:
        return f"OpenCV {cv2.__version__} is built without windows"
    names = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    if sys.platform.startswith("linux") and not any(os.environ.get(name) for name in names):
        return "DISPLAY is not set"
    return None


def summary() -> dict[str, bool]:
    """Every capability's presence, for run records and bug reports."""
    return {name: capability.present() for name, capability in CAPABILITIES.items()}
