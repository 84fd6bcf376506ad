"""The per-image work of `annotate`: `Annotator(settings)` turns one input file into its `ImageResult`
(decode → detect → classify → draw → write the annotated copy and its exports). The local process
pool and Ray wrap the same object (`maskmodel.batch.engines`, `maskmodel.batch.distributed`).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from maskmodel.detect.boxstyle import BoxAdjust
from maskmodel.io.crawl import VIDEO_EXTENSIONS, InputFile
from maskmodel.classify.crops import crop_face, expand_box
from maskmodel.drawing.draw import draw_faces
from maskmodel.detect.detector_config import DetectorConfig
from maskmodel.outputs.exports import crop_name
from maskmodel.io.imageio import (DEFAULT_MAX_PIXELS, ImageReadError, ImageWriteError, decode_image, encode_image,
                                  read_image, read_stream)
from maskmodel.drawing.labels import DEFAULT_STYLE, LabelStyle
from maskmodel.io.layout import output_name
from maskmodel.io.runstate import record_identity
from maskmodel.io.storage import TEMP_PREFIX, LocalFolder, RemoteFolder, open_folder, source_folder
from maskmodel.pipeline import MaskDetector
from maskmodel.outputs.report import original_path, report_path_text
from maskmodel.results import Face, ImageResult
from maskmodel.video.frames import VideoReadError, VideoWriteError, annotate_video
from maskmodel.zoo.registry import DEFAULT_CLASSIFIER

# Write errors that every later file would hit too: the run stops (--resume continues it). Any other
# write error (a name too long, an unencodable size, a symlink on the way) is that file's error row.
RUN_STOPPING_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM,
                                 errno.ENOENT})


@dataclass(frozen=True)
class AnnotateSettings:
    """Everything a worker needs to process one image. `out_dir` is a local path or a URI
    (`s3://bucket/run`, see `maskmodel.io.storage`)."""

    out_dir: str
    detector: DetectorConfig = DetectorConfig()
    model: str = DEFAULT_CLASSIFIER
    backend: str = "auto"  # runtime of both networks (maskmodel.runtime.backends)
    precision: str = "auto"
    box_adjust: BoxAdjust | None = None
    image_format: str = "same"
    blur_faces: bool = False
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    every: int = 1
    codec: str | None = None
    style: LabelStyle = DEFAULT_STYLE
    save: tuple[str, ...] = ()  # export formats: coco, yolo, voc (`maskmodel.outputs.exports`)
    save_json: bool = False
    save_crops: tuple[str, ...] | None = None  # classes to crop (empty: all); None: no crops
    temp_prefix: str = TEMP_PREFIX  # set by `annotate` to the output folder's own (`maskmodel.io.runstate`)


class OutputWriteError(OSError):
    """The output could not be written in a way every later image would hit too (disk full, read-only,
    no permission): the run stops; the image is not reported, so `--resume` does it again."""


class _WriteFailed(Exception):
    """An annotated copy of one image could not be written; that image gets an error row."""


def build_detector(settings: AnnotateSettings) -> MaskDetector:
    """The `MaskDetector` that `settings` describe (models loaded and checked)."""
    return MaskDetector(settings.detector, settings.model, settings.backend, settings.box_adjust, settings.precision)


class Annotator:
    """One worker's models and output folder; call it with an input file to get that file's
    `ImageResult` (its faces, or why it failed).

    Args:
        settings: what to detect with and where to write.
        detector: an already loaded `MaskDetector` to use (else one is built from `settings`).
    """

    def __init__(self, settings: AnnotateSettings, detector: MaskDetector | None = None) -> None:
        self.detector, self.settings = detector or build_detector(settings), settings
        self.folder = open_folder(settings.out_dir)
        if isinstance(self.folder, LocalFolder):
            self.folder.temp_prefix = settings.temp_prefix
            if settings.temp_prefix != TEMP_PREFIX:  # the output folder's run state is there
                self.folder.on_publish = partial(record_identity, self.folder.root)

    def __call__(self, item: InputFile) -> ImageResult:
        detector, settings, folder = self.detector, self.settings, self.folder
        if item.error:
            return ImageResult.failure(item.relative, item.error)
        name = item.output or output_name(item.relative, settings.image_format,
                                          item.path.suffix.lower() in VIDEO_EXTENSIONS)
        if not (settings.dry_run or folder.can_hold(name)):
            return ImageResult.failure(item.relative, f"{folder} cannot hold this file name (it is not valid UTF-8)")
        try:
            if item.path.suffix.lower() in VIDEO_EXTENSIONS:
                return _process_video(item, detector, settings, folder, name)
            return _process_image(item, detector, settings, folder, name)
        except _WriteFailed as error:
            return ImageResult.failure(item.relative, str(error))


def _process_image(item: InputFile, detector: MaskDetector, settings: AnnotateSettings,
                   folder: LocalFolder | RemoteFolder, name: str) -> ImageResult:
    try:
        image = _read_input(item, settings.max_pixels)
    except ImageReadError as error:
        return ImageResult.failure(item.relative, str(error))
    try:
        faces = detector.detect(image)
        annotated = None if settings.dry_run else draw_faces(image, faces, detector.classes, blur=settings.blur_faces,
                                                                style=settings.style)
    except (cv2.error, ValueError) as error:
        return ImageResult.failure(item.relative, f"{type(error).__name__}: {error}")
    if annotated is not None:
        with _writing(folder, name):
            try:
                folder.write_bytes(name, encode_image(annotated, Path(name).suffix))
            except ImageWriteError as error:
                raise _WriteFailed(str(error)) from None
    crops = []
    if settings.save_crops is not None and not settings.dry_run:
        crops = _face_crops(image, faces, detector, settings.save_crops, item.relative)
    height, width = image.shape[:2]
    return ImageResult.found(item.relative, faces, (width, height), detector.face_detector.name, detector.model_name,
                             output=None if settings.dry_run else name, crops=crops)


def _face_crops(image: np.ndarray, faces: list[Face], detector: MaskDetector, classes: tuple[str, ...],
                relative: str) -> list[tuple[str, bytes]]:
    """(name, JPEG bytes) of the crops of the faces of `classes` (all when empty), cut by the
    classifier's crop policy at the face's own resolution; named after the input's report path."""
    path = original_path(report_path_text(relative))
    policy = detector.classifier.contract.crop
    crops = []
    for index, face in enumerate(faces):
        if classes and face.label not in classes:
            continue
        x1, _, x2, _ = expand_box(face.box, policy)
        crop = crop_face(image, face.box, policy, max(8, x2 - x1))
        crops.append((crop_name(path, index, face.label), encode_image(crop, ".jpg")))
    return crops


def _process_video(item: InputFile, detector: MaskDetector, settings: AnnotateSettings,
                   folder: LocalFolder | RemoteFolder, name: str) -> ImageResult:
    try:
        with ExitStack() as stack:
            source = stack.enter_context(_local_copy(item))
            target = None if settings.dry_run else stack.enter_context(_writing(folder, name, folder.staged_file(name)))
            results, size = annotate_video(source, detector, target, settings.every, settings.codec,
                                           settings.blur_faces, settings.style, settings.max_pixels)
    except (VideoReadError, VideoWriteError) as error:  # the staged file opened: not the disk's doing
        return ImageResult.failure(item.relative, str(error))
    return ImageResult.found(item.relative, [face for _, face in results], size, detector.face_detector.name,
                             detector.model_name, output=None if settings.dry_run else name,
                             frames=[frame for frame, _ in results])


@contextmanager
def _writing(folder: LocalFolder | RemoteFolder, name: str, inner=None) -> Iterator:
    """Sort the OSErrors of writing `name`: those every file would hit stop the run
    (`OutputWriteError`), the others are this file's (`_WriteFailed`)."""
    try:
        with inner or nullcontext() as value:
            yield value
    except OSError as error:
        message = f"cannot write {folder.show(name)}: {error.strerror or error}"
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            message += " (a symlink or file is in the way; maskmodel never writes through one)"
        if error.errno in RUN_STOPPING_ERRORS or error.errno is None:
            raise OutputWriteError(f"{message}; the run stopped: fix that, then run the same command with --resume") from None
        raise _WriteFailed(message) from None


def _read_input(item: InputFile, max_pixels: int) -> np.ndarray:
    """The decoded image of an input file, on disk or in a folder URI; raises `ImageReadError`."""
    if item.source is None:
        return read_image(item.path, max_pixels)
    try:
        data = source_folder(item.source).read_bytes(item.path.as_posix(), read_stream)
    except OSError as error:
        raise ImageReadError(f"cannot read file: {error}") from error
    if data is None:
        raise ImageReadError("file not found")
    return decode_image(np.frombuffer(data, dtype=np.uint8), max_pixels)


@contextmanager
def _local_copy(item: InputFile) -> Iterator[Path]:
    """A local path of an input file: the file itself, or a temporary copy of a file in a folder URI."""
    if item.source is None:
        try:
            regular = stat.S_ISREG(os.stat(item.path).st_mode)
        except OSError as error:
            raise VideoReadError(f"cannot read file: {error.strerror or error}") from error
        if not regular:
            raise VideoReadError("not a regular file")
        yield item.path
        return
    with tempfile.TemporaryDirectory(prefix="maskmodel-input-") as folder:
        local = Path(folder) / item.path.name
        try:
            source_folder(item.source).download(item.path.as_posix(), local)
        except OSError as error:
            raise VideoReadError(f"cannot read file: {error}") from error
        yield local




