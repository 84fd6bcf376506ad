"""Batch annotation: crawl → decode → detect → classify → draw → write image → report rows.

`iter_annotate` is the core (a generator, so a million-image folder streams); `annotate` runs it
to completion and writes `report.csv` and `summary.json`. Work is spread over `jobs` processes
(or Ray actors, `maskmodel.distributed`), each loading the models once; results come back in input
order, so reports are stable. Videos go through `maskmodel.video` and get per-frame rows.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import multiprocessing
import os
import signal
import stat
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from maskmodel.crawl import IMAGE_EXTENSIONS, InputFile, iter_inputs
from maskmodel.crops import crop_face, expand_box
from maskmodel.draw import draw_faces
from maskmodel.errors import UsageError
from maskmodel.exports import CROPS_KEY, ExportWriter, crop_name, label_names
from maskmodel.faces import detector_options
from maskmodel.html_report import HTML_NAME, build_html
from maskmodel.imageio import (DEFAULT_MAX_PIXELS, ImageReadError, ImageWriteError, decode_image, encode_image,
                               read_image)
from maskmodel.labels import DEFAULT_STYLE, LabelStyle
from maskmodel.layout import OutputNames, input_file, output_name, resolve_inputs
from maskmodel.outputs import TEMP_PREFIX, LocalFolder, RemoteFolder, local_path, open_folder
from maskmodel.pipeline import MaskDetector
from maskmodel.report import (WORKER_DIED, ReportMirror, ReportWriter, Summary, error_row, image_rows, original_path,
                              is_video_path, prepare_resume, read_report, report_path_text)
from maskmodel.runstate import OWN_FILES, RunState
from maskmodel.video import VIDEO_EXTENSIONS, VideoReadError, annotate_video
from maskmodel.zoo import DEFAULT_CLASSIFIER

REPORT_NAME, SUMMARY_NAME = OWN_FILES
MAX_ATTEMPTS = 3  # runs of an image whose worker process dies, before it gets an error row
DIED = WORKER_DIED
# Write errors that every later file would hit too: the run stops (--resume continues it). Any other
# write error (a name too long, an unencodable size, a symlink on the way) is that file's error row.
RUN_STOPPING_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM,
                                 errno.ENOENT})


@dataclass(frozen=True)
class AnnotateSettings:
    """Everything a worker needs to process one image. `out_dir` is a local path or a URI
    (`s3://bucket/run`, see `maskmodel.outputs`)."""

    out_dir: str
    face_detector: str = "yunet"
    model: str = DEFAULT_CLASSIFIER
    backend: str = "auto"
    score_threshold: float | None = None
    scales: tuple[int, ...] | None = None
    flip: bool = False
    nms_threshold: float | None = None
    image_format: str = "same"
    blur_faces: bool = False
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    every: int = 1
    codec: str | None = None
    style: LabelStyle = DEFAULT_STYLE
    save: tuple[str, ...] = ()  # export formats: coco, yolo, voc (`maskmodel.exports`)
    save_json: bool = False
    save_crops: tuple[str, ...] | None = None  # classes to crop (empty: all); None: no crops
    temp_prefix: str = TEMP_PREFIX  # set by `annotate` to the output folder's own (`maskmodel.runstate`)


_worker: tuple[MaskDetector, AnnotateSettings, LocalFolder | RemoteFolder] | None = None


class OutputWriteError(OSError):
    """The output could not be written in a way every later image would hit too (disk full, read-only,
    no permission): the run stops; the image is not reported, so `--resume` does it again."""


class _WriteFailed(Exception):
    """An annotated copy of one image could not be written; that image gets an error row."""


def _start_worker(settings: AnnotateSettings, threads: int | None = None, detector: MaskDetector | None = None) -> None:
    global _worker
    if threads is not None:  # a pool worker: Ctrl-C is the main process's to handle; it ends with its parent
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cv2.setNumThreads(threads)
        _exit_with_parent()
    if detector is None:
        options = detector_options(settings.face_detector, settings.score_threshold, settings.scales, settings.flip,
                                   settings.nms_threshold)
        detector = MaskDetector(settings.face_detector, settings.model, settings.backend, **options)
    folder = open_folder(settings.out_dir)
    if isinstance(folder, LocalFolder):
        folder.temp_prefix = settings.temp_prefix
    _worker = (detector, settings, folder)


def _exit_with_parent(interval: float = 0.5) -> None:
    """Exit this worker process as soon as the process that started it is gone (killed, crashed)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="maskmodel-parent-watch", daemon=True).start()


def _process(item: InputFile) -> list[dict]:
    detector, settings, folder = _worker
    if item.error:
        return [error_row(item.relative, item.error)]
    name = item.output or output_name(item.relative, settings.image_format,
                                      item.path.suffix.lower() in VIDEO_EXTENSIONS)
    if not (settings.dry_run or folder.can_hold(name)):
        return [error_row(item.relative, f"{folder} cannot hold this file name (it is not valid UTF-8)")]
    try:
        if item.path.suffix.lower() in VIDEO_EXTENSIONS:
            return _process_video(item, detector, settings, folder, name)
        return _process_image(item, detector, settings, folder, name)
    except _WriteFailed as error:
        return [error_row(item.relative, str(error))]


def _process_image(item: InputFile, detector: MaskDetector, settings: AnnotateSettings,
                   folder: LocalFolder | RemoteFolder, name: str) -> list[dict]:
    try:
        image = _read_input(item, settings.max_pixels)
    except ImageReadError as error:
        return [error_row(item.relative, str(error))]
    try:
        faces = detector.detect(image)
        annotated = None if settings.dry_run else draw_faces(image, faces, detector.classes, blur=settings.blur_faces,
                                                                style=settings.style)
    except (cv2.error, ValueError) as error:
        return [error_row(item.relative, f"{type(error).__name__}: {error}")]
    if annotated is not None:
        with _writing(folder, name):
            try:
                folder.write_bytes(name, encode_image(annotated, Path(name).suffix))
            except ImageWriteError as error:
                raise _WriteFailed(str(error)) from None
    height, width = image.shape[:2]
    rows = image_rows(item.relative, faces, width, height, detector.face_detector.name, detector.model_name,
                      output=None if settings.dry_run else name)
    if settings.save_crops is not None and not settings.dry_run:
        rows[0][CROPS_KEY] = _face_crops(image, faces, detector, settings.save_crops, rows[0]["path"])
    return rows


def _face_crops(image: np.ndarray, faces: list, detector: MaskDetector, classes: tuple[str, ...],
                path_cell: str) -> list[tuple[str, bytes]]:
    """(name, JPEG bytes) of the crops of the faces of `classes` (all when empty), cut by the
    classifier's crop policy at the face's own resolution."""
    policy = detector.classifier.contract.crop
    crops = []
    for index, face in enumerate(faces):
        if classes and face.label not in classes:
            continue
        x1, _, x2, _ = expand_box(face.box, policy)
        crop = crop_face(image, face.box, policy, max(8, x2 - x1))
        crops.append((crop_name(original_path(path_cell), index, face.label), encode_image(crop, ".jpg")))
    return crops


def _process_video(item: InputFile, detector: MaskDetector, settings: AnnotateSettings,
                   folder: LocalFolder | RemoteFolder, name: str) -> list[dict]:
    try:
        with ExitStack() as stack:
            source = stack.enter_context(_local_copy(item))
            target = None if settings.dry_run else stack.enter_context(_writing(folder, name, folder.staged_file(name)))
            results, size = annotate_video(source, detector, target, settings.every, settings.codec,
                                           settings.blur_faces, settings.style)
    except VideoReadError as error:
        return [error_row(item.relative, str(error))]
    faces = [face for *_, face in results]
    frames = [(index, seconds, track) for index, seconds, track, _ in results]
    return image_rows(item.relative, faces, *size, detector.face_detector.name, detector.model_name, frames,
                      output=None if settings.dry_run else name)


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
            raise OutputWriteError(message) from None
        raise _WriteFailed(message) from None


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
            _source_folder(item.source).download(item.path.as_posix(), local)
        except OSError as error:
            raise VideoReadError(f"cannot read file: {error}") from error
        yield local


@lru_cache(maxsize=16)
def _source_folder(uri: str) -> RemoteFolder:
    return RemoteFolder(uri)


def iter_annotate(items: list[InputFile], settings: AnnotateSettings, jobs: int = 1,
                  detector: MaskDetector | None = None) -> Iterator[list[dict]]:
    """Report rows of each item, in input order, computed by `jobs` processes.

    With `jobs > 1`, a worker process that dies (a crash in native code, the OOM killer) is replaced;
    the images it may have held are run again one at a time, and an image whose process dies
    `MAX_ATTEMPTS` times gets an `error` row; workers exit when this process dies. With `jobs=1` the
    work runs in this process (with `detector`, if one is given).
    """
    if jobs <= 1:
        _start_worker(settings, detector=detector)
        yield from map(_process, items)
        return
    # OpenCV's own pixel limit in the workers (read when they import cv2): the run's --max-pixels
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(settings.max_pixels)
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
    overwrite: bool = False,
) -> Summary:
    """Annotate every image under `inputs` into `settings.out_dir`; write the report and summary.

    Nothing is written before the inputs, the output folder and the models are checked: overlaps
    between inputs and output, an output folder in use by another run or not written by maskmodel, a
    damaged report to resume, and missing or corrupt models raise (`UsageError` and the zoo's errors).
    Originals are never written (`maskmodel.layout`). `settings.out_dir` may be a URI
    (`s3://bucket/run`): the workers write the annotated copies there, and the report is uploaded as it
    grows (`maskmodel.report.ReportMirror`).

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
        overwrite: write into a non-empty output folder of an earlier run, removing what that run wrote.
    """
    started = time.time()
    roots = resolve_inputs(inputs, settings.out_dir)
    folder = open_folder(settings.out_dir)
    _check_output(folder, resume, overwrite)
    detector = _load_models(settings)  # before anything is written: a bad model is one clear error
    unknown = sorted(set(settings.save_crops or ()) - set(detector.classes))
    if unknown:
        raise UsageError(f"Expected --save-crops classes among {detector.classes}. Received: {', '.join(unknown)}")
    with ExitStack() as cleanup:
        state = None
        if not folder.remote:
            state = RunState(folder.root)
            state.acquire()
            cleanup.callback(state.release)
            settings = dataclasses.replace(settings, temp_prefix=state.temp_prefix)
            folder.temp_prefix = state.temp_prefix
            if overwrite and not resume:
                state.remove_previous_outputs()
        report_path, mirror = cleanup.enter_context(_report_location(folder))
        if resume and mirror:
            mirror.restore()
        done = prepare_resume(report_path, state and state.folder / "report.csv.tmp") if resume else set()
        if mirror:  # one remote report.csv from here on: the restored rows, no parts of an older run
            mirror.publish()
        if resume:  # images a killed run was still writing: never complete, never under a final name
            if state:
                state.remove_temporary_files(skip=[r.real for r in roots if r.real is not None and r.is_dir])
            else:
                folder.remove_temporary_files()
        summary = Summary()
        items, copies = _plan(roots, folder, state, settings, include, exclude, hidden, summary.skipped_files, done)
        exports = ExportWriter(folder, state, detector.classes, settings.save, settings.save_json, copies)
        exports.claim([name for item in items if item.error is None and not is_video_path(item.relative)
                       for name in label_names(original_path(report_path_text(item.relative)), settings.save)])
        if on_start:
            on_start(len(items))
        writer = ReportWriter(report_path, append=resume)
        completed = False
        try:
            if engine == "ray":
                from maskmodel.distributed import iter_annotate_ray

                results = iter_annotate_ray(items, settings, address, num_cpus)
            else:
                results = iter_annotate(items, settings, jobs, detector)
            for rows in results:
                exports.image(rows, rows[0].pop(CROPS_KEY, []))  # first: a resumed image writes them again
                writer.write(rows)
                summary.processed += 1
                if mirror:
                    mirror.sync()
                if on_image:
                    on_image(rows)
            _finish_exports(exports, read_report(report_path), bool(done), detector, settings, folder, roots)
            completed = True
        finally:
            writer.close()
            whole = Summary.of_report(report_path)
            summary = dataclasses.replace(whole, processed=summary.processed, skipped_files=summary.skipped_files,
                                          seconds=time.time() - started)
            record = {"settings": {**asdict(settings), "out_dir": str(folder)},  # no credentials of a URI
                      "used": _what_was_used(detector, engine, jobs, inputs, started),
                      "jobs": jobs, "resumed_skipped": len(done), **summary.to_dict(),
                      "exports_refused": exports.refused}
            try:
                if mirror:
                    mirror.publish()
                folder.write_bytes(SUMMARY_NAME, json.dumps(record, indent=2).encode())
            except OSError:
                if completed:  # otherwise the error that stopped the run is the one to report
                    raise
    return summary


def _what_was_used(detector: MaskDetector, engine: str, jobs: int, inputs: list, started: float) -> dict:
    """Enough to rerun a run: inputs, the detector settings in force (defaults resolved), the models
    and the versions of the software, start and end time."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    face_detector = detector.face_detector
    settings = {key: getattr(face_detector, key) for key in ("scales", "score_threshold", "nms_threshold", "flip",
                                                             "input_size", "min_size") if hasattr(face_detector, key)}
    return {
        "inputs": [str(_public(i)) for i in inputs],
        "face_detector": {"name": face_detector.name, **settings},
        "model": detector.model_name,
        "classes": detector.classes,
        "classifier_backend": getattr(detector.classifier, "backend", None),
        "engine": engine, "jobs": jobs,
        "versions": {"maskmodel": installed("maskmodel"), "opencv": cv2.__version__, "numpy": np.__version__,
                     "onnxruntime": installed("onnxruntime")},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _public(location: Path | str) -> str:
    """A location without the credentials or options a URI may carry."""
    return str(location) if local_path(location) is not None else str(open_folder(location))


def _finish_exports(exports: ExportWriter, blocks: list[list[dict]], resumed: bool, detector: MaskDetector,
                    settings: AnnotateSettings, folder: LocalFolder | RemoteFolder, roots) -> None:
    """The run-level files, from the whole report: the --save ones and report.html."""
    exports.finish(blocks, resumed)
    exports.claim([HTML_NAME])
    setup = f"detector {settings.face_detector}, classifier {detector.model_name}, output {folder}"
    exports.write(HTML_NAME, build_html(blocks, detector.classes, lambda path: input_file(path, roots), setup).encode())


def _check_output(folder: LocalFolder | RemoteFolder, resume: bool, overwrite: bool) -> None:
    """Refuse an output folder that cannot be written safely (raises `UsageError`)."""
    if folder.remote:
        if not (resume or overwrite or folder.is_empty()):
            raise UsageError(f"{folder} is not empty: use --resume to continue or --overwrite")
        return
    root = folder.root
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is a file, not a directory")
    if folder.is_empty():
        return
    if not (resume or overwrite):
        raise UsageError(f"{root} is not empty: use --resume to continue or --overwrite")
    for name in OWN_FILES:
        if (root / name).is_symlink():
            raise UsageError(f"{root / name} is a symlink: maskmodel never writes through one")
    if not RunState.exists_in(root) and any((root / name).exists() for name in OWN_FILES):
        raise UsageError(f"{root} holds a report that maskmodel did not write (no {root / '.maskmodel'}): "
                         "choose an empty or new --out")


def _load_models(settings: AnnotateSettings) -> MaskDetector:
    """The detector and classifier, loaded and checked once here, before any worker starts."""
    options = detector_options(settings.face_detector, settings.score_threshold, settings.scales, settings.flip,
                               settings.nms_threshold)
    return MaskDetector(settings.face_detector, settings.model, settings.backend, **options)


def _plan(roots, folder: LocalFolder | RemoteFolder, state: RunState | None, settings: AnnotateSettings,
          include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool, skipped: Counter,
          done: set[str]) -> tuple[list[InputFile], set[str]]:
    """The inputs still to do, each with the distinct name of its annotated copy (recorded in the run
    state before any is written), or an error when no name would be safe; and the annotated-copy names
    of all inputs, done ones included."""
    names = OutputNames(None if folder.remote else folder.root, roots, state.written() if state else set())
    skip = None if folder.remote else folder.root
    items, new_names = [], []
    for item in iter_inputs(roots, skip, include, exclude, hidden, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS, skipped):
        video = item.path.suffix.lower() in VIDEO_EXTENSIONS
        name = names.assign(output_name(item.relative, settings.image_format, video))
        if report_path_text(item.relative) in done:
            continue
        if item.error is None and name is None:
            item = dataclasses.replace(item, error="its annotated copy would be written inside an input folder; "
                                                   "choose an --out outside the inputs")
        elif name is not None:
            item = dataclasses.replace(item, output=name)
            new_names.append(name)
        items.append(item)
    if state and not settings.dry_run:
        state.record([name for name in new_names if name not in names.owned])
    return items, names.used


@contextmanager
def _report_location(folder: LocalFolder | RemoteFolder) -> Iterator[tuple[Path, ReportMirror | None]]:
    """The local report file to write, and for a remote folder the mirror that uploads it."""
    if not folder.remote:
        yield folder.root / REPORT_NAME, None
        return
    with tempfile.TemporaryDirectory(prefix="maskmodel-report-") as staging:
        local = Path(staging) / REPORT_NAME
        yield local, ReportMirror(folder, local, REPORT_NAME)
