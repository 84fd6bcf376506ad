"""Batch annotation: crawl → decode → detect → classify → draw → write image → report rows.

`iter_annotate` is the core (a generator, so a million-image folder streams); `annotate` runs it
to completion and writes `report.csv` and `summary.json`. Work is spread over `jobs` processes
(or Ray actors, `maskmodel.distributed`), each loading the models once; results come back in input
order, so reports are stable. Videos go through `maskmodel.video` and get per-frame rows.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from maskmodel.boxstyle import BoxAdjust
from maskmodel.crawl import IMAGE_EXTENSIONS, InputFile, iter_inputs
from maskmodel.draw import draw_faces
from maskmodel.faces import DEFAULT_FACE_DETECTOR, detector_options
from maskmodel.imageio import DEFAULT_MAX_PIXELS, ImageReadError, decode_image, encode_image, read_image
from maskmodel.outputs import LocalFolder, RemoteFolder, open_folder
from maskmodel.pipeline import MaskDetector
from maskmodel.report import ReportMirror, ReportWriter, Summary, error_row, image_rows, prepare_resume, report_path_text
from maskmodel.video import VIDEO_EXTENSIONS, VideoReadError, annotate_video
from maskmodel.zoo import DEFAULT_CLASSIFIER

REPORT_NAME, SUMMARY_NAME = "report.csv", "summary.json"
MAX_ATTEMPTS = 3  # runs of an image whose worker process dies, before it gets an error row
DIED = "the worker process died {} times on this file"
ENCODABLE = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class AnnotateSettings:
    """Everything a worker needs to process one image. `out_dir` is a local path or a URI
    (`s3://bucket/run`, see `maskmodel.outputs`)."""

    out_dir: str
    face_detector: str = DEFAULT_FACE_DETECTOR
    model: str = DEFAULT_CLASSIFIER
    backend: str = "auto"
    score_threshold: float | None = None
    scales: tuple[int, ...] | None = None
    flip: bool = False
    nms_threshold: float | None = None
    box_adjust: BoxAdjust | None = None
    image_format: str = "same"
    blur_faces: bool = False
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    every: int = 1
    codec: str | None = None


def output_name(relative: str, image_format: str) -> str:
    """The relative name of the annotated copy of `relative` (`same` keeps the suffix when it can
    be written)."""
    suffix = Path(relative).suffix.lower()
    if image_format == "same":
        return relative if suffix in ENCODABLE else f"{relative}.png"
    return relative if suffix == f".{image_format}" else f"{relative}.{image_format}"


_worker: tuple[MaskDetector, AnnotateSettings, LocalFolder | RemoteFolder] | None = None


class OutputWriteError(OSError):
    """An annotated copy could not be written (disk full, read-only, ...): the run stops, since every
    later image would fail the same way; the image is not reported, so `--resume` does it again."""


def _start_worker(settings: AnnotateSettings, threads: int | None = None) -> None:
    global _worker
    if threads is not None:  # a pool worker: Ctrl-C is the main process's to handle
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cv2.setNumThreads(threads)
    options = detector_options(settings.face_detector, settings.score_threshold, settings.scales, settings.flip,
                               settings.nms_threshold)
    detector = MaskDetector(settings.face_detector, settings.model, settings.backend, settings.box_adjust, **options)
    _worker = (detector, settings, open_folder(settings.out_dir))


def _process(item: InputFile) -> list[dict]:
    detector, settings, folder = _worker
    if not (settings.dry_run or folder.can_hold(item.relative)):
        return [error_row(item.relative, f"{folder} cannot hold this file name (it is not valid UTF-8)")]
    if item.path.suffix.lower() in VIDEO_EXTENSIONS:
        return _process_video(item, detector, settings, folder)
    try:
        image = _read_input(item, settings.max_pixels)
    except ImageReadError as error:
        return [error_row(item.relative, str(error))]
    try:
        faces = detector.detect(image)
        annotated = None if settings.dry_run else draw_faces(image, faces, detector.classes, blur=settings.blur_faces)
    except (cv2.error, ValueError) as error:
        return [error_row(item.relative, f"{type(error).__name__}: {error}")]
    if annotated is not None:
        name = output_name(item.relative, settings.image_format)
        try:
            folder.write_bytes(name, encode_image(annotated, Path(name).suffix))
        except OSError as error:
            raise OutputWriteError(f"cannot write {folder.show(name)}: {error.strerror or error}") from None
    height, width = image.shape[:2]
    return image_rows(item.relative, faces, width, height, detector.face_detector.name, detector.model_name)


def _process_video(item: InputFile, detector: MaskDetector, settings: AnnotateSettings,
                   folder: LocalFolder | RemoteFolder) -> list[dict]:
    try:
        with (_local_copy(item) as source,
              nullcontext() if settings.dry_run else folder.staged_file(item.relative) as target):
            results, size = annotate_video(source, detector, target, settings.every, settings.codec,
                                           settings.blur_faces)
    except VideoReadError as error:
        return [error_row(item.relative, str(error))]
    except OSError as error:
        raise OutputWriteError(f"cannot write {folder.show(item.relative)}: {error.strerror or error}") from None
    faces = [face for *_, face in results]
    frames = [(index, seconds, track) for index, seconds, track, _ in results]
    return image_rows(item.relative, faces, *size, detector.face_detector.name, detector.model_name, frames)


def _read_input(item: InputFile, max_pixels: int) -> np.ndarray:
    """The decoded image of an input file, on disk or in a folder URI; raises `ImageReadError`."""
    if item.source is None:
        return read_image(item.path, max_pixels)
    try:
        data = _source_folder(item.source).read_bytes(item.path.as_posix())
    except OSError as error:
        raise ImageReadError(f"cannot read file: {error}") from error
    if data is None:
        raise ImageReadError("file not found")
    return decode_image(np.frombuffer(data, dtype=np.uint8), max_pixels)


@contextmanager
def _local_copy(item: InputFile) -> Iterator[Path]:
    """A local path of an input file: the file itself, or a temporary copy of a file in a folder URI."""
    if item.source is None:
        yield item.path
        return
    with tempfile.TemporaryDirectory(prefix="maskmodel-input-") as folder:
        local = Path(folder) / item.path.name
        try:
            _source_folder(item.source).download(item.path.as_posix(), local)
        except OSError as error:
            raise VideoReadError(f"cannot read file: {error}") from error
        yield local


@lru_cache(maxsize=16)
def _source_folder(uri: str) -> RemoteFolder:
    return RemoteFolder(uri)


def iter_annotate(items: list[InputFile], settings: AnnotateSettings, jobs: int = 1) -> Iterator[list[dict]]:
    """Report rows of each item, in input order, computed by `jobs` processes.

    With `jobs > 1`, a worker process that dies (a crash in native code, the OOM killer) is replaced;
    the images it may have held are run again one at a time, and an image whose process dies
    `MAX_ATTEMPTS` times gets an `error` row. With `jobs=1` the work runs in this process.
    """
    if jobs <= 1:
        _start_worker(settings)
        yield from map(_process, items)
        return
    queue = deque(range(len(items)))  # indices to submit, in order
    suspects: set[int] = set()  # in flight when a process died: rerun one at a time
    deaths: Counter = Counter()
    finished: dict[int, list[dict]] = {}
    emitted = 0
    while emitted < len(items):
        # one thread per worker process: the processes share the cores instead of oversubscribing them
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                   initargs=(settings, 1))
        running: dict[Future, int] = {}
        try:
            while True:
                while emitted in finished:
                    yield finished.pop(emitted)
                    emitted += 1
                if emitted == len(items):
                    break
                while queue and len(running) < (1 if suspects else 2 * jobs):
                    index = queue.popleft()
                    running[pool.submit(_process, items[index])] = index
                for future in wait(running, return_when=FIRST_COMPLETED).done:
                    rows = future.result()  # the worker's own errors (unwritable output) stop the run
                    index = running.pop(future)
                    finished[index] = rows
                    suspects.discard(index)
        except BrokenProcessPool:
            lost = sorted(running.values())
            if len(lost) == 1:  # it ran alone: this image killed its process
                deaths[lost[0]] += 1
                if deaths[lost[0]] == MAX_ATTEMPTS:
                    finished[lost[0]] = [error_row(items[lost[0]].relative, DIED.format(MAX_ATTEMPTS))]
                    lost = []
            suspects.update(lost)
            queue.extendleft(reversed(lost))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def annotate(
    inputs: list[Path | str],
    settings: AnnotateSettings,
    jobs: int = 1,
    resume: bool = False,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    hidden: bool = False,
    on_image: Callable[[list[dict]], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    engine: str = "local",
    address: str | None = None,
    num_cpus: int | None = None,
) -> Summary:
    """Annotate every image under `inputs` into `settings.out_dir`; write the report and summary.

    `settings.out_dir` may be a URI (`s3://bucket/run`): the workers write the annotated copies there,
    and the report is uploaded as it grows (`maskmodel.report.ReportMirror`).

    Args:
        inputs: files and directories, and folder URIs (`s3://bucket/photos`).
        settings: output directory, models, drawing and format options.
        jobs: worker processes. Defaults to `1`.
        resume: skip images already in an existing report and append to it.
        include: glob patterns (relative paths or file names) a file must match, if any are given.
        exclude: glob patterns of files to skip.
        hidden: also crawl hidden files and directories.
        on_image: called with the rows of each finished image (progress bars).
        on_start: called with the number of images to process.
        engine: `"local"` (`jobs` processes) or `"ray"` (Ray actors, see `maskmodel.distributed`).
        address: Ray cluster address for `engine="ray"` (`None`: a local Ray started for the run).
        num_cpus: CPUs of that local Ray. Defaults to all.
    """
    started = time.time()
    folder = open_folder(settings.out_dir)
    with _report_location(folder) as (report_path, mirror):
        if resume and mirror:
            mirror.restore()
        done = prepare_resume(report_path) if resume else set()
        if mirror:  # one remote report.csv from here on: the restored rows, no parts of an older run
            mirror.publish()
        if resume:  # images a killed run was still writing: never complete, never under a final name
            folder.remove_temporary_files()
        extensions = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
        skip = None if folder.remote else folder.root
        items = [i for i in iter_inputs(inputs, skip, include, exclude, hidden, extensions)
                 if report_path_text(i.relative) not in done]
        if on_start:
            on_start(len(items))
        summary = Summary()
        writer = ReportWriter(report_path, append=resume)
        completed = False
        try:
            if engine == "ray":
                from maskmodel.distributed import iter_annotate_ray

                results = iter_annotate_ray(items, settings, address, num_cpus)
            else:
                results = iter_annotate(items, settings, jobs)
            for rows in results:
                writer.write(rows)
                summary.add(rows)
                if mirror:
                    mirror.sync()
                if on_image:
                    on_image(rows)
            completed = True
        finally:
            writer.close()
            summary.seconds = time.time() - started
            record = {"settings": {**asdict(settings), "out_dir": str(folder)},  # no credentials of a URI
                      "jobs": jobs, "resumed_skipped": len(done), **summary.to_dict()}
            try:
                if mirror:
                    mirror.publish()
                folder.write_bytes(SUMMARY_NAME, json.dumps(record, indent=2).encode())
            except OSError:
                if completed:  # otherwise the error that stopped the run is the one to report
                    raise
    return summary


@contextmanager
def _report_location(folder: LocalFolder | RemoteFolder) -> Iterator[tuple[Path, ReportMirror | None]]:
    """The local report file to write, and for a remote folder the mirror that uploads it."""
    if not folder.remote:
        folder.root.mkdir(parents=True, exist_ok=True)
        yield folder.root / REPORT_NAME, None
        return
    with tempfile.TemporaryDirectory(prefix="maskmodel-report-") as staging:
        local = Path(staging) / REPORT_NAME
        yield local, ReportMirror(folder, local, REPORT_NAME)
