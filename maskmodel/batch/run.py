"""Batch annotation: crawl → plan the outputs → run the per-image work → report, exports, summary.

`annotate` checks inputs, output folder and models, lists the inputs (resuming skips what is
reported), gives each its output name (`maskmodel.io.layout`), runs `maskmodel.batch.worker.Annotator` on each
through an engine (`maskmodel.batch.engines`: this process or a pool of `jobs` processes; or Ray,
`maskmodel.batch.distributed`), and writes `report.csv`, the exports and `summary.json`. Results come back in
input order, so reports are stable. Videos go through `maskmodel.video.frames` and get per-frame rows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from functools import partial
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from maskmodel.io.crawl import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputFile, iter_inputs
from maskmodel.detect.detector_config import DetectorConfig
from maskmodel.batch.engines import AUTO_MIN_PHOTOS, iter_annotate, start_workers, worker_count
from maskmodel.errors import UsageError
from maskmodel.outputs.exports import ExportWriter, label_names
from maskmodel.outputs.html_report import HTML_NAME, build_html
from maskmodel.io.layout import InputRoot, OutputNames, input_file, output_name, resolve_inputs
from maskmodel.io.storage import LocalFolder, RemoteFolder, local_path, open_folder
from maskmodel.pipeline import MaskDetector
from maskmodel.outputs.report import (ReportMirror, ReportWriter, Summary, original_path, is_video_path, prepare_resume,
                                      read_report, report_path_text, report_rows)
from maskmodel.results import ImageResult
from maskmodel.io.runstate import OWN_FILES, STATE_FOLDER, RunState, record_identity
from maskmodel.batch.worker import AnnotateSettings, build_detector
from maskmodel.video.frames import check_codec

REPORT_NAME, SUMMARY_NAME = OWN_FILES


def annotate(
    inputs: list[Path | str],
    settings: AnnotateSettings,
    jobs: int | str = 1,
    resume: bool = False,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    hidden: bool = False,
    on_image: Callable[[ImageResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    engine: str = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    overwrite: bool = False,
) -> Summary:
    """Annotate every image under `inputs` into `settings.out_dir`; write the report and summary.

    Nothing is written before the inputs, the output folder and the models are checked: overlaps
    between inputs and output, inputs holding no image or video, an output folder in use by another run or
    not written by maskmodel, a damaged report to resume, and missing or corrupt models raise (`UsageError`
    and the zoo's errors).
    Originals are never written (`maskmodel.io.layout`). `settings.out_dir` may be a URI
    (`s3://bucket/run`): the workers write the annotated copies there, and the report is uploaded as it
    grows (`maskmodel.outputs.report.ReportMirror`).

    Args:
        inputs: files and directories, and folder URIs (`s3://bucket/photos`).
        settings: output directory, models, drawing and format options.
        jobs: worker processes, or `"auto"` (`maskmodel.batch.engines.worker_count`). Defaults to `1`.
        resume: skip images already in an existing report and append to it.
        include: glob patterns (relative paths or file names) a file must match, if any are given.
        exclude: glob patterns of files to skip.
        hidden: also crawl hidden files and directories.
        on_image: called with the `ImageResult` of each finished image (progress bars).
        on_start: called with the number of images to process.
        engine: `"local"` (`jobs` processes) or `"ray"` (Ray actors, see `maskmodel.batch.distributed`).
        address: Ray cluster address for `engine="ray"` (`None`: a local Ray started for the run).
        num_cpus: CPUs of that local Ray. Defaults to all.
        overwrite: write into a non-empty output folder of an earlier run, removing what that run wrote.
    """
    started = time.time()
    if resume and overwrite:
        raise UsageError("--resume continues the report and --overwrite starts again: give one of them")
    check_codec(settings.codec)
    roots = resolve_inputs(inputs, settings.out_dir)
    folder = open_folder(settings.out_dir)
    _check_output(folder, resume, overwrite)  # a quick answer before the models load; again under the lock
    found = _check_found(inputs, roots, folder, include, exclude, hidden)
    with ExitStack() as cleanup:
        workers, early_jobs = None, worker_count(jobs, found)
        if engine != "ray":  # they load their networks while this process checks the models and the folder
            workers = start_workers(settings, early_jobs)
            cleanup.callback(workers.shutdown, wait=False, cancel_futures=True)
        detector = build_detector(settings)  # before anything is written: a bad model is one clear error
        unknown = sorted(set(settings.save_crops or ()) - set(detector.classes))
        if unknown:
            raise UsageError(f"Expected --save-crops classes among {detector.classes}. Received: {', '.join(unknown)}")
        state = None
        if not folder.remote:
            state = RunState(folder.root)
            cleanup.callback(state.release)
            state.acquire()  # lock first, then check, then work
            _check_output(folder, resume, overwrite)
            state.start()
            settings = dataclasses.replace(settings, temp_prefix=state.temp_prefix)
            folder.temp_prefix = state.temp_prefix
            folder.on_publish = partial(record_identity, folder.root)
            starting_over = overwrite or state.overwrite_pending()  # a killed --overwrite is finished first
            if starting_over:
                state.begin_overwrite()
            state.check_configuration(_configuration(detector, settings, roots), resume and not starting_over)
            if starting_over:
                state.end_overwrite()
        report_path, mirror = cleanup.enter_context(_report_location(folder))
        if resume and mirror:
            mirror.restore()
        done = prepare_resume(report_path, settings.temp_prefix) if resume else set()
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
        networks = _networks(detector, settings.detector)
        del detector  # the workers hold the networks from here on: this process's copy would only cost memory
        exports.claim([name for item in items if item.error is None and not is_video_path(item.relative)
                       for name in label_names(original_path(report_path_text(item.relative)), settings.save)])
        if on_start:
            on_start(len(items))
        writer = ReportWriter(report_path, append=resume)
        completed, blocks = False, None
        try:
            if engine == "ray":
                from maskmodel.batch.distributed import iter_annotate_ray

                results = iter_annotate_ray(items, settings, address, num_cpus)
            else:
                jobs = worker_count(jobs, len(items))
                if jobs != early_jobs:  # a --resume left fewer photos than the inputs hold
                    workers.shutdown(wait=False, cancel_futures=True)
                results = iter_annotate(items, settings, jobs, workers if jobs == early_jobs else None)
            for result in results:
                rows = report_rows(result)
                exports.image(rows, result.crops)  # first: a resumed image writes them again
                writer.write(rows)
                summary.processed += 1
                if mirror:
                    mirror.sync()
                if on_image:
                    on_image(result)
            blocks = read_report(report_path)  # read once: the run-level exports and the summary
            _finish_exports(exports, blocks, bool(done), networks, settings, folder, roots)
            completed = True
        finally:
            writer.close()
            whole = Summary.of_blocks(read_report(report_path) if blocks is None else blocks)
            summary = dataclasses.replace(whole, processed=summary.processed, skipped_files=summary.skipped_files,
                                          seconds=time.time() - started)
            record = {"settings": {**asdict(settings), "out_dir": str(folder)},  # no credentials of a URI
                      "used": _what_was_used(networks, engine, jobs, inputs, started),
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


def _networks(detector: MaskDetector, config: DetectorConfig) -> dict:
    """What the run's networks are: the face detector's model version and settings in force (defaults
    resolved), the classifier, its classes and the runtime of each."""
    face_detector = detector.face_detector
    settings = {key: getattr(face_detector, key) for key in ("scales", "first_pass", "refine_below", "score_threshold",
                                                             "nms_threshold", "flip", "input_size", "min_size")
                if hasattr(face_detector, key)}
    return {"face_detector": {"name": face_detector.name, "model": config.model_spec(), **settings},
            "model": detector.model_name, "classes": detector.classes,
            "classifier_backend": getattr(detector.classifier, "backend", None), "runtime": _runtime(detector)}


def _what_was_used(networks: dict, engine: str, jobs: int, inputs: list, started: float) -> dict:
    """Enough to rerun a run: inputs, the networks (`_networks`), the versions of the software, start and end
    time."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    return {
        "inputs": [str(_public(i)) for i in inputs], **networks,
        "engine": engine, "jobs": jobs,
        "versions": {"maskmodel": installed("maskmodel"), "opencv": cv2.__version__, "numpy": np.__version__,
                     "onnxruntime": installed("onnxruntime"), "openvino": installed("openvino")},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _configuration(detector: MaskDetector, settings: AnnotateSettings, roots: list[InputRoot]) -> dict:
    """Every option the outputs depend on: a resumed run must have the same (`RunState.check_configuration`).
    The inputs are recorded as their report-path prefixes and the real paths these stand for. The export
    options are among them: crops cannot be rebuilt from the report, and exports a resume left out would
    describe only the images of earlier runs."""
    config = settings.detector
    inputs = {root.prefix or ".": str(root.real if root.real is not None else _public(root.location)) for root in roots}
    return {"detector": {"name": config.name, "model": config.model_spec(), **config.resolved()},
            "model": detector.model_name, "classes": list(detector.classes), "box_adjust": asdict(detector.box_adjust),
            "every": settings.every, "inputs": inputs, "blur_faces": settings.blur_faces,
            "image_format": settings.image_format, "style": asdict(settings.style), "codec": settings.codec,
            "dry_run": settings.dry_run, "max_pixels": settings.max_pixels, "runtime": _runtime(detector),
            "exports": {"save": sorted(settings.save), "save_json": settings.save_json,
                        "save_crops": None if settings.save_crops is None else sorted(settings.save_crops)}}


def _runtime(detector: MaskDetector) -> dict:
    """The runtime each network runs on, `auto` resolved (boxes and scores differ between runtimes)."""
    return {part: {"backend": getattr(network, "backend", None), "precision": getattr(network, "precision", None)}
            for part, network in (("face_detector", detector.face_detector), ("classifier", detector.classifier))}


def _public(location: Path | str) -> str:
    """A location without the credentials or options a URI may carry."""
    return str(location) if local_path(location) is not None else str(open_folder(location))


def _finish_exports(exports: ExportWriter, blocks: list[list[dict]], resumed: bool, networks: dict,
                    settings: AnnotateSettings, folder: LocalFolder | RemoteFolder, roots) -> None:
    """The run-level files, from the whole report: the --save ones and report.html."""
    exports.finish(blocks, resumed)
    exports.claim([HTML_NAME])
    setup = f"detector {settings.detector.name}, classifier {networks['model']}, output {folder}"
    exports.write(HTML_NAME, build_html(blocks, networks["classes"], lambda path: input_file(path, roots), setup).encode())


def _check_output(folder: LocalFolder | RemoteFolder, resume: bool, overwrite: bool) -> None:
    """Refuse an output folder that cannot be written safely (raises `UsageError`)."""
    if folder.remote:
        if not (resume or overwrite or folder.is_empty()):
            raise UsageError(f"{folder} is not empty: use --resume to continue or --overwrite")
        return
    root = folder.root
    if os.path.lexists(root) and not root.is_dir():
        raise UsageError(f"{root} is a file, not a directory")
    if _is_fresh(root):
        return
    if not (resume or overwrite):
        raise UsageError(f"{root} is not empty: use --resume to continue or --overwrite")
    if not RunState.exists_in(root) and any(os.path.lexists(root / name) for name in OWN_FILES):
        raise UsageError(f"{root} holds a report that maskmodel did not write (no {root / '.maskmodel'}): "
                         "choose an empty or new --out")


def _is_fresh(root: Path) -> bool:
    """Whether no run has written into `root`: missing, empty, or holding only a state folder with
    nothing but a lock in it (this run's own, or one a killed run left before writing anything)."""
    if not root.is_dir():
        return True
    names = set(os.listdir(root))
    if not names <= {STATE_FOLDER}:
        return False
    state = root / STATE_FOLDER
    return not names or (state.is_dir() and not state.is_symlink() and set(os.listdir(state)) <= {"lock"})


def _check_found(inputs: list[Path | str], roots: list[InputRoot], folder: LocalFolder | RemoteFolder,
                 include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool) -> int:
    """Refuse inputs that hold no image or video to crawl (`UsageError`: nothing to do, likely the wrong
    folder), before anything is written. Images already reported count: a `--resume` with nothing left is
    not an error. Returns how many there are, counted up to `AUTO_MIN_PHOTOS` (enough for `worker_count`)."""
    skip = None if folder.remote else folder.root
    found = iter_inputs(roots, skip, include, exclude, hidden, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
    if next(found, None) is None:
        filters = " matching --include/--exclude" if include or exclude else ""
        raise UsageError(f"no images or videos{filters} found in {', '.join(_public(i) for i in inputs)}")
    return 1 + sum(1 for _ in islice(found, AUTO_MIN_PHOTOS - 1))


def _plan(roots, folder: LocalFolder | RemoteFolder, state: RunState | None, settings: AnnotateSettings,
          include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool, skipped: Counter,
          done: set[str]) -> tuple[list[InputFile], set[str]]:
    """The inputs still to do, each with the distinct name of its annotated copy (recorded in the run
    state before any is written), or an error when no name would be safe; and the annotated-copy names
    of all inputs, done ones included."""
    names = OutputNames(None if folder.remote else folder.root, roots, state.ours() if state else set())
    skip = None if folder.remote else folder.root
    items, new_names = [], []
    for item in iter_inputs(roots, skip, include, exclude, hidden, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS, skipped):
        video = item.path.suffix.lower() in VIDEO_EXTENSIONS
        name = names.assign(output_name(item.relative, settings.image_format, video))
        if report_path_text(item.relative) in done:
            continue
        if item.error is None and name is None:
            item = dataclasses.replace(item, error=names.refusal(output_name(item.relative, settings.image_format, video)))
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
