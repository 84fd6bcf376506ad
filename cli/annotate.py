"""`maskmodel annotate` (batch) and `maskmodel predict` (one image, JSON)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from maskmodel.cli.detector import (JOBS_HELP, MODEL_OPTION, JobsType, cap_jobs, detector_options, detector_settings,
                                    mask_detector)
from maskmodel.cli.errors import describe
from maskmodel.cli.verbosity import verbose
from maskmodel.outputs.exports import EXPORT_FORMATS
from maskmodel.io.imageio import DEFAULT_MAX_PIXELS
from maskmodel.io.storage import local_path, open_folder


class InputType(click.ParamType):
    """An existing file or directory (a path or a `file://` URI), or a folder URI (`s3://bucket/photos`),
    left as text."""

    name = "path|uri"

    def convert(self, value, param, ctx):
        path = local_path(value)
        if path is not None:
            return click.Path(exists=True, path_type=Path).convert(os.fspath(path), param, ctx)
        try:
            folder = open_folder(value)
            exists = folder.exists()
        except (RuntimeError, ValueError, OSError) as error:
            self.fail(str(error), param, ctx)
        if not exists:
            self.fail(f"{folder} does not exist.", param, ctx)
        return value


INPUT = InputType()


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=INPUT)
@click.option("--out", "out_dir", required=True, metavar="DIR|URI",
              help="Output directory: annotated copies (mirroring the input tree), report.csv, summary.json, "
                   "report.html (and the --save files). "
                   "A URI (s3://bucket/run, gs://..., any pyarrow or fsspec filesystem) writes there.")
@detector_options
@MODEL_OPTION
@click.option("--backend", type=click.Choice(["auto", "opencv", "onnxruntime", "openvino"]), default="auto",
              show_default=True,
              help="Runtime of the networks (face detector and classifier): OpenCV DNN (always there), ONNX Runtime "
                   "or OpenVINO if installed. auto: OpenVINO where the CPU has bf16, else ONNX Runtime, else "
                   "OpenVINO, else OpenCV.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Network precision. auto: the face detector in bf16 on OpenVINO where the CPU has it (AVX512-BF16 or AMX), "
                   "else fp32; the classifier in fp32.")
@click.option("--jobs", "-j", type=JobsType(), default="auto", show_default=True, callback=cap_jobs,
              help=JOBS_HELP)
@click.option("--resume", is_flag=True, help="Skip images already in OUT/report.csv and append to it.")
@click.option("--overwrite", is_flag=True,
              help="Write into a non-empty OUT: what earlier runs wrote there is removed first (only that).")
@click.option("--dry-run", is_flag=True, help="Detect and report, but write no images.")
@click.option("--format", "image_format", type=click.Choice(["same", "jpg", "png"]), default="same", show_default=True)
@click.option("--blur-faces", is_flag=True, help="Blur every face in the annotated copies (privacy).")
@click.option("--labels", "label_mode", type=click.Choice(["auto", "full", "short", "none"]), default="auto",
              show_default=True, help="Captions: full (class and confidence), short (one-letter tag, see the legend), "
                                      "none; auto: short when the median face is under 32 px.")
@click.option("--no-conf", is_flag=True, help="Captions without the confidence.")
@click.option("--line-width", type=click.IntRange(1, 50), default=None, help="Box line width in px (default: scaled).")
@click.option("--font-scale", type=click.FloatRange(0.2, 5), default=None,
              help="Caption font scale (default: scaled to the faces and the image).")
@click.option("--enlarge", type=click.FloatRange(1, 8), default=None,
              help="Draw images on a canvas this many times larger (tiny faces get legible captions). Default: "
                   "automatic, up to 4x and 1600 px, enlarged only as much as the captions need to be legible "
                   "(text 12 px high) and sit beside their faces (captions never cover a face box).")
@click.option("--save", "save_formats", type=click.Choice(EXPORT_FORMATS), multiple=True,
              help="Also write labels: coco (predictions.coco.json), yolo (labels/*.txt, classes.txt), voc "
                   "(annotations/*.xml). Repeatable.")
@click.option("--save-json", is_flag=True, help="Also write results.jsonl: one JSON record per image with its faces.")
@click.option("--save-crops", default=None, is_flag=False, flag_value="all", metavar="[CLASS,...]",
              help="Also write face crops to crops/<class>/ (all classes, or the comma-separated ones given; "
                   "not with --dry-run).")
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Skip files matching this glob (repeatable).")
@click.option("--hidden", is_flag=True, help="Also crawl hidden files and directories.")
@click.option("--max-pixels", type=click.IntRange(1), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Refuse images whose header declares more pixels (decompression bombs).")
@click.option("--every", type=click.IntRange(1), default=1, show_default=True,
              help="Videos: detect in every Nth frame (the others keep the last boxes).")
@click.option("--codec", default=None, metavar="FOURCC",
              help="Videos: codec of the annotated copy (default mp4v, MJPG for .avi).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: --jobs processes on this machine; ray: Ray actors (pip install '.[ray]' from a checkout).")
@click.option("--address", default=None, help="Ray cluster address (auto, ray://host:port); default: a local Ray.")
@click.option("--num-cpus", type=click.IntRange(1), default=None, help="CPUs of the local Ray (default: all).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary on stdout.")
def annotate(inputs, out_dir, face_detector, preset, threshold, scales, flip, nms_iou, first_pass, box_adjust, model, backend, precision, jobs, resume,
             overwrite, dry_run, image_format, blur_faces, label_mode, no_conf, line_width, font_scale, enlarge, save_formats,
             save_json, save_crops, include, exclude, hidden, max_pixels, every, codec, engine,
             address, num_cpus, quiet) -> None:
    """Find and classify every face in INPUTS (images and videos, files or directories, recursively;
    or folder URIs such as s3://bucket/photos).

    Videos (mp4, avi, mov, mkv) get an annotated copy and one report row per face and processed
    frame, with a track id; the summary counts people (tracks), not face-frames.

    Originals are never written: OUT may not be an input, an OUT inside an input is not crawled, and
    no annotated copy replaces a file that maskmodel did not write. One run at a time writes an OUT.

    Exit codes: 0 all images processed, 1 some images failed (listed in the report) or the output
    could not be written (continue with --resume), 2 usage error, nothing written (conflicting paths,
    OUT in use by another run, a damaged report, no image or video in INPUTS), 130 interrupted (Ctrl-C).
    """
    from tqdm import tqdm

    from maskmodel.batch.run import REPORT_NAME, SUMMARY_NAME, AnnotateSettings
    from maskmodel.outputs.html_report import HTML_NAME
    from maskmodel.batch.run import annotate as run_annotate
    from maskmodel.errors import UsageError
    from maskmodel.outputs.exports import run_names
    from maskmodel.drawing.labels import LabelStyle

    detector = detector_settings(face_detector, preset, threshold, scales, flip, nms_iou, box_adjust, first_pass)
    if engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise click.UsageError("--engine ray needs Ray: pip install '.[ray]' (from a checkout)")
    try:
        folder = open_folder(out_dir)
    except (RuntimeError, ValueError, OSError) as error:
        raise click.BadParameter(str(error), param_hint="--out") from error
    settings = AnnotateSettings(out_dir=out_dir, model=model, backend=backend, precision=precision,
                                image_format=image_format,
                                blur_faces=blur_faces, dry_run=dry_run, max_pixels=max_pixels, every=every,
                                codec=codec, save=tuple(sorted(set(save_formats))), save_json=save_json,
                                save_crops=_crop_classes(save_crops), style=LabelStyle(label_mode, not no_conf, line_width, font_scale, enlarge or "auto"),
                                **detector)
    bar = tqdm(unit="img", disable=quiet or not sys.stderr.isatty(), file=sys.stderr)

    def start(total: int) -> None:
        bar.total = total
        bar.refresh()

    try:
        summary = run_annotate(list(inputs), settings, jobs=jobs, resume=resume, include=include,
                               exclude=exclude, hidden=hidden, on_image=lambda result: bar.update(1),
                               on_start=start, engine=engine, address=address, num_cpus=num_cpus,
                               overwrite=overwrite)
    except UsageError:  # nothing was written: conflicting paths, an --out in use or not ours, a bad model
        bar.close()
        raise
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"\nInterrupted: the report so far is in {folder.show(REPORT_NAME)}. Continue with the same "
                   "command plus --resume.", err=True)
        sys.exit(130)
    except Exception as error:  # models missing or corrupt, output not writable: one clear line
        bar.close()
        raise click.ClickException(describe(error, verbose(click.get_current_context()), out_dir)) from error
    bar.close()
    result = summary.to_dict()
    if not quiet:
        videos = f"{result['videos']} videos ({result['video_frames_with_faces']} frames with faces), " \
            if result["videos"] else ""
        click.echo(f"{result['images']} images, {videos}{result['faces']} faces: {result['with_mask']} with mask, "
                   f"{result['without_mask']} without"
                   + (f", {result['mask_incorrect']} mask incorrect" if result["mask_incorrect"] else "")
                   + (f" (compliance {result['compliance_rate']})" if result["faces"] else "")
                   + f", {result['images_without_faces']} without faces, {result['errors']} errors; "
                   f"{result['processed_this_run']} processed in this run, {result['seconds']} s"
                   + (f" ({result['images_per_second']} images/s)" if result["images_per_second"] else ""))
        if result["skipped_files"]:
            skipped = ", ".join(f"{count} {suffix}" for suffix, count in result["skipped_files"].items())
            click.echo(f"not images or videos, skipped: {skipped}")
        exports = run_names(settings.save, save_json) + \
            ["labels/"] * ("yolo" in settings.save) + ["annotations/"] * ("voc" in settings.save) + \
            ["crops/"] * (save_crops is not None and not dry_run)
        click.echo(f"written: {folder.show(REPORT_NAME)}, {folder.show(SUMMARY_NAME)}, {folder.show(HTML_NAME)}"
                   + "".join(f", {folder.show(name)}" for name in exports)
                   + ("" if dry_run else f", annotated images under {folder}"))
    if summary.errors:
        for line in summary.errors:
            click.echo(f"failed: {line}", err=True)
        sys.exit(1)


def _crop_classes(value: str | None) -> tuple[str, ...] | None:
    """--save-crops: None (no crops), () for all classes, or the classes named."""
    if value is None:
        return None
    return () if value == "all" else tuple(name.strip() for name in value.split(",") if name.strip())


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True, path_type=Path))
@detector_options
@MODEL_OPTION
def predict(images, face_detector, preset, threshold, scales, flip, nms_iou, first_pass, box_adjust, model) -> None:
    """Print the faces of IMAGES as JSON lines, one per image: box, score, label, probabilities
    (rounded as in the report). IMAGES are files, folders (crawled as annotate does) or `-`: standard
    input holding one image's bytes (maskmodel predict - < photo.jpg) or paths, one per line
    (find photos -name '*.jpg' | maskmodel predict -). Exit code 1 if an image could not be read (its
    line has an `error`)."""
    import numpy as np

    from maskmodel.io.imageio import ImageReadError, decode_image, read_image

    settings = detector_settings(face_detector, preset, threshold, scales, flip, nms_iou, box_adjust, first_pass)
    detector = mask_detector(model, settings)
    failed = False
    for name, source in _predict_sources(images):
        try:
            if isinstance(source, ImageReadError):
                raise source
            pixels = decode_image(np.frombuffer(source, np.uint8)) if isinstance(source, bytes) else read_image(source)
        except ImageReadError as error:
            failed = True
            click.echo(json.dumps({"image": name, "error": str(error)}, ensure_ascii=False))
            continue
        faces = detector.detect(pixels)
        click.echo(faces.to_json(image=name, detector=detector.face_detector.name, model=detector.model_name))
    if failed:
        sys.exit(1)


MAX_STDIN_BYTES = 256 << 20
HEAD_BYTES = 1 << 16  # how much of standard input is read before deciding: an image, or paths
MAX_PATH_BYTES = 1 << 16  # a longer line on standard input is not a path
STDIN_HELP = ("pipe one image's bytes (maskmodel predict - < photo.jpg) or file names, one per line "
              "(find photos -name '*.jpg' | maskmodel predict -)")


def _predict_sources(images) -> Iterator[tuple[str, Path | bytes | Exception]]:
    """(name, source) for each image to predict: a path, an image's bytes from standard input, or the
    `ImageReadError` that tells why there is none. Folders are crawled as `annotate` does."""
    from maskmodel.io.crawl import iter_inputs
    from maskmodel.io.imageio import ImageReadError

    for given in images:
        if str(given) != "-":
            yield from ((str(item.path), item.path) for item in iter_inputs([given]))
            continue
        try:
            stdin = _stdin_image_or_paths()
            if isinstance(stdin, bytes):
                yield "-", stdin
                continue
            for path in stdin:
                if not os.path.lexists(path):
                    yield str(path), ImageReadError(f"{path} (from standard input) not found")
                    continue
                yield from ((str(item.path), item.path) for item in iter_inputs([path]))
        except ImageReadError as error:
            yield "-", error


def _stdin_image_or_paths() -> bytes | Iterator[Path]:
    """Standard input as one image's bytes, when it starts with an image header, else as the paths on
    its lines (read as they come). Raises `ImageReadError` when it is neither (binary, not an image)
    or an image beyond `MAX_STDIN_BYTES`, without reading the rest."""
    from maskmodel.io.imageio import ImageReadError
    from maskmodel.io.imagesize import declared_size

    head = sys.stdin.buffer.read(HEAD_BYTES)
    if declared_size(head) is not None:
        chunks, total = [head], len(head)
        while chunk := sys.stdin.buffer.read(1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_STDIN_BYTES:
                raise ImageReadError(f"standard input holds more than {MAX_STDIN_BYTES} bytes: not one image")
        return b"".join(chunks)
    if not head or b"\0" in head:
        raise ImageReadError(f"standard input is neither an image of a known format nor file names: {STDIN_HELP}")
    return _stdin_paths(head)


def _stdin_paths(head: bytes) -> Iterator[Path]:
    """The non-empty lines of standard input (after `head`, already read) as paths, as they arrive;
    `ImageReadError` at a line longer than `MAX_PATH_BYTES`."""
    from maskmodel.io.imageio import ImageReadError

    pending = head
    while True:
        *lines, pending = pending.split(b"\n")
        yield from (Path(os.fsdecode(line.rstrip(b"\r"))) for line in lines if line.strip())
        if len(pending) > MAX_PATH_BYTES:
            raise ImageReadError(f"standard input has a line longer than {MAX_PATH_BYTES} bytes: not a path; {STDIN_HELP}")
        block = sys.stdin.buffer.read1(1 << 16)
        if not block:
            break
        pending += block
    if pending.strip():
        yield Path(os.fsdecode(pending.rstrip(b"\r")))
