"""`maskmodel annotate` (batch) and `maskmodel predict` (one image, JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cli.detector import detector_options, detector_settings, mask_detector
from maskmodel.imageio import DEFAULT_MAX_PIXELS
from maskmodel.outputs import is_uri, open_folder
from maskmodel.zoo import DEFAULT_CLASSIFIER


class InputType(click.ParamType):
    """An existing file or directory, or a folder URI (`s3://bucket/photos`), left as text."""

    name = "path|uri"

    def convert(self, value, param, ctx):
        if not is_uri(value):
            return click.Path(exists=True, path_type=Path).convert(value, param, ctx)
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
              help="Output directory: annotated copies (mirroring the input tree), report.csv, summary.json. "
                   "A URI (s3://bucket/run, gs://..., any pyarrow or fsspec filesystem) writes there.")
@detector_options
@click.option("--model", default=DEFAULT_CLASSIFIER, show_default=True, help="Classifier (NAME or NAME@VERSION).")
@click.option("--backend", type=click.Choice(["auto", "opencv", "onnxruntime"]), default="auto", show_default=True,
              help="Classifier runtime: OpenCV DNN, or ONNX Runtime if installed (auto: ONNX Runtime when present).")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True, help="Worker processes.")
@click.option("--resume", is_flag=True, help="Skip images already in OUT/report.csv and append to it.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty OUT, replacing its report.")
@click.option("--dry-run", is_flag=True, help="Detect and report, but write no images.")
@click.option("--format", "image_format", type=click.Choice(["same", "jpg", "png"]), default="same", show_default=True)
@click.option("--blur-faces", is_flag=True, help="Blur every face in the annotated copies (privacy).")
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
              help="local: --jobs processes on this machine; ray: Ray actors (pip install 'maskmodel[ray]').")
@click.option("--address", default=None, help="Ray cluster address (auto, ray://host:port); default: a local Ray.")
@click.option("--num-cpus", type=click.IntRange(1), default=None, help="CPUs of the local Ray (default: all).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary on stdout.")
def annotate(inputs, out_dir, face_detector, preset, threshold, scales, flip, nms_iou, box_adjust, model, backend, jobs,
             resume, overwrite, dry_run, image_format, blur_faces, include, exclude, hidden, max_pixels, every, codec,
             engine, address, num_cpus, quiet) -> None:
    """Find and classify every face in INPUTS (images and videos, files or directories, recursively;
    or folder URIs such as s3://bucket/photos).

    Videos (mp4, avi, mov, mkv) get an annotated copy and one report row per face and processed
    frame, with a track id; the summary counts people (tracks), not face-frames.

    Exit codes: 0 all images processed, 1 some images failed (listed in the report) or the output
    could not be written (continue with --resume), 2 usage error, 130 interrupted (Ctrl-C).
    """
    from tqdm import tqdm

    from maskmodel.annotate import REPORT_NAME, SUMMARY_NAME, AnnotateSettings
    from maskmodel.annotate import annotate as run_annotate

    detector = detector_settings(face_detector, preset, threshold, scales, flip, nms_iou, box_adjust)
    if engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise click.UsageError("--engine ray needs Ray: pip install 'maskmodel[ray]'")
    try:
        folder = open_folder(out_dir)
    except (RuntimeError, ValueError, OSError) as error:
        raise click.BadParameter(str(error), param_hint="--out") from error
    if not folder.remote and folder.root.is_file():
        raise click.BadParameter(f"{folder} is a file, not a directory", param_hint="--out")
    if not folder.remote and any(folder.root.resolve() == Path(i).resolve() for i in inputs if not is_uri(i)):
        raise click.BadParameter("must not be one of the inputs (originals are never overwritten)", param_hint="--out")
    if not (resume or overwrite or folder.is_empty()):
        raise click.BadParameter(f"{folder} is not empty: use --resume to continue or --overwrite", param_hint="--out")
    settings = AnnotateSettings(out_dir=out_dir, model=model, backend=backend, image_format=image_format,
                                blur_faces=blur_faces, dry_run=dry_run, max_pixels=max_pixels, every=every,
                                codec=codec, **detector)
    bar = tqdm(unit="img", disable=quiet or not sys.stderr.isatty(), file=sys.stderr)

    def start(total: int) -> None:
        bar.total = total
        bar.refresh()

    try:
        summary = run_annotate(list(inputs), settings, jobs=jobs, resume=resume, include=include,
                               exclude=exclude, hidden=hidden, on_image=lambda rows: bar.update(1),
                               on_start=start, engine=engine, address=address, num_cpus=num_cpus)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"\nInterrupted: the report so far is in {folder.show(REPORT_NAME)}. Continue with the same "
                   "command plus --resume.", err=True)
        sys.exit(130)
    except Exception as error:  # models missing or corrupt, output not writable: one clear line
        bar.close()
        raise click.ClickException(f"{type(error).__name__}: {error}") from error
    bar.close()
    result = summary.to_dict()
    if not quiet:
        click.echo(f"{result['images']} images, {result['faces']} faces: {result['with_mask']} with mask, "
                   f"{result['without_mask']} without (compliance {result['compliance_rate']}), "
                   f"{result['images_without_faces']} without faces, {result['errors']} errors, "
                   f"{result['seconds']} s ({result['images_per_second']} images/s)")
        click.echo(f"written: {folder.show(REPORT_NAME)}, {folder.show(SUMMARY_NAME)}"
                   + ("" if dry_run else f", annotated images under {folder}"))
    if summary.errors:
        for line in summary.errors:
            click.echo(f"failed: {line}", err=True)
        sys.exit(1)


@click.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@detector_options
@click.option("--model", default=DEFAULT_CLASSIFIER, show_default=True)
def predict(image, face_detector, preset, threshold, scales, flip, nms_iou, box_adjust, model) -> None:
    """Print the faces of one IMAGE as JSON (box, score, label, probabilities)."""
    from maskmodel.imageio import ImageReadError, read_image

    settings = detector_settings(face_detector, preset, threshold, scales, flip, nms_iou, box_adjust)
    try:
        pixels = read_image(image)
    except ImageReadError as error:
        raise click.ClickException(f"{image}: {error}") from error
    detector = mask_detector(model, settings)
    faces = detector.detect(pixels)
    click.echo(json.dumps({"image": str(image), "width": pixels.shape[1], "height": pixels.shape[0],
                           "detector": detector.face_detector.name, "model": detector.model_name,
                           "faces": [{"box": [round(v, 1) for v in f.box], "score": round(f.score, 4),
                                      "label": f.label, "probabilities": f.probabilities} for f in faces]},
                          indent=2))
