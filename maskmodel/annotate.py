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
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2

from maskmodel.crawl import IMAGE_EXTENSIONS, InputFile, iter_inputs
from maskmodel.draw import draw_faces
from maskmodel.imageio import DEFAULT_MAX_PIXELS, TEMP_PREFIX, ImageReadError, read_image, write_image_atomic
from maskmodel.pipeline import MaskDetector
from maskmodel.report import ReportWriter, Summary, error_row, image_rows, prepare_resume, report_path_text
from maskmodel.video import VIDEO_EXTENSIONS, VideoReadError, annotate_video
from maskmodel.zoo import DEFAULT_CLASSIFIER

REPORT_NAME, SUMMARY_NAME = "report.csv", "summary.json"
ENCODABLE = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class AnnotateSettings:
    """Everything a worker needs to process one image."""

    out_dir: str
    face_detector: str = "yunet"
    model: str = DEFAULT_CLASSIFIER
    backend: str = "auto"
    score_threshold: float | None = None
    scales: tuple[int, ...] | None = None
    image_format: str = "same"
    blur_faces: bool = False
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    every: int = 1
    codec: str | None = None


def output_path(out_dir: Path, relative: str, image_format: str) -> Path:
    """Where the annotated copy of `relative` goes (`same` keeps the suffix when it can be written)."""
    target = Path(out_dir) / relative
    suffix = target.suffix.lower()
    if image_format == "same":
        return target if suffix in ENCODABLE else target.with_name(target.name + ".png")
    return target.with_name(target.name + f".{image_format}") if suffix != f".{image_format}" else target


_worker: tuple[MaskDetector, AnnotateSettings] | None = None


class OutputWriteError(OSError):
    """An annotated copy could not be written (disk full, read-only, ...): the run stops, since every
    later image would fail the same way; the image is not reported, so `--resume` does it again."""


def detector_options(face_detector: str, score_threshold: float | None, scales: tuple[int, ...] | None) -> dict:
    """Keyword options for the face detector from the command-line settings (None: detector default)."""
    options: dict = {} if score_threshold is None else {"score_threshold": score_threshold}
    if scales:
        if face_detector != "yunet":
            raise ValueError(f"scales apply to the yunet detector only. Received: face_detector={face_detector!r}")
        options["scales"] = tuple(scales)
    return options


def _start_worker(settings: AnnotateSettings, threads: int | None = None) -> None:
    global _worker
    if threads is not None:  # a pool worker: Ctrl-C is the main process's to handle
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cv2.setNumThreads(threads)
    options = detector_options(settings.face_detector, settings.score_threshold, settings.scales)
    _worker = (MaskDetector(settings.face_detector, settings.model, settings.backend, **options), settings)


def _process(item: InputFile) -> list[dict]:
    detector, settings = _worker
    if item.path.suffix.lower() in VIDEO_EXTENSIONS:
        return _process_video(item, detector, settings)
    try:
        image = read_image(item.path, settings.max_pixels)
    except ImageReadError as error:
        return [error_row(item.relative, str(error))]
    try:
        faces = detector.detect(image)
        annotated = None if settings.dry_run else draw_faces(image, faces, detector.classes, blur=settings.blur_faces)
    except (cv2.error, ValueError) as error:
        return [error_row(item.relative, f"{type(error).__name__}: {error}")]
    if annotated is not None:
        target = output_path(Path(settings.out_dir), item.relative, settings.image_format)
        try:
            write_image_atomic(target, annotated)
        except OSError as error:
            raise OutputWriteError(f"cannot write {target}: {error.strerror or error}") from None
    height, width = image.shape[:2]
    return image_rows(item.relative, faces, width, height, detector.face_detector.name, detector.model_name)


def _process_video(item: InputFile, detector: MaskDetector, settings: AnnotateSettings) -> list[dict]:
    target = None if settings.dry_run else Path(settings.out_dir) / item.relative
    try:
        results, size = annotate_video(item.path, detector, target, settings.every, settings.codec,
                                       settings.blur_faces)
    except VideoReadError as error:
        return [error_row(item.relative, str(error))]
    except OSError as error:
        raise OutputWriteError(f"cannot write {target}: {error.strerror or error}") from None
    faces = [face for *_, face in results]
    frames = [(index, seconds, track) for index, seconds, track, _ in results]
    return image_rows(item.relative, faces, *size, detector.face_detector.name, detector.model_name, frames)


def iter_annotate(items: list[InputFile], settings: AnnotateSettings, jobs: int = 1) -> Iterator[list[dict]]:
    """Report rows of each item, in input order, computed by `jobs` processes."""
    if jobs <= 1:
        _start_worker(settings)
        yield from map(_process, items)
        return
    context = multiprocessing.get_context("spawn")
    # one thread per worker process: the processes share the cores instead of oversubscribing them
    with context.Pool(jobs, initializer=_start_worker, initargs=(settings, 1)) as pool:
        yield from pool.imap(_process, items, chunksize=4)


def annotate(
    inputs: list[Path],
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

    Args:
        inputs: files and directories.
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
    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / REPORT_NAME
    done = prepare_resume(report_path) if resume else set()
    if resume:  # images a killed run was still writing: never complete, never under a final name
        for stale in out_dir.rglob(f"{TEMP_PREFIX}*"):
            stale.unlink(missing_ok=True)
    extensions = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    items = [i for i in iter_inputs(inputs, out_dir, include, exclude, hidden, extensions)
             if report_path_text(i.relative) not in done]
    if on_start:
        on_start(len(items))
    summary = Summary()
    writer = ReportWriter(report_path, append=resume)
    try:
        if engine == "ray":
            from maskmodel.distributed import iter_annotate_ray

            results = iter_annotate_ray(items, settings, address, num_cpus)
        else:
            results = iter_annotate(items, settings, jobs)
        for rows in results:
            writer.write(rows)
            summary.add(rows)
            if on_image:
                on_image(rows)
    finally:
        writer.close()
        summary.seconds = time.time() - started
        record = {"settings": asdict(settings), "jobs": jobs, "resumed_skipped": len(done), **summary.to_dict()}
        try:
            (out_dir / SUMMARY_NAME).write_text(json.dumps(record, indent=2))
        except OSError:  # output disk full: the error that stopped the run is the one to report
            pass
    return summary
