"""The face-detector options shared by `annotate`, `predict`, `evaluate detect` and `watch`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from maskmodel.detect.detector_config import (DEFAULT_FACE_DETECTOR, DETECTOR_CLASSES, PRESET_NAMES, DetectorConfig,
                                              DetectorConfigError, missing_capability)
from maskmodel.zoo import DEFAULT_CLASSIFIER, model_info
from maskmodel.zoo.local_detectors import is_local_detector


class FaceDetectorChoice(click.Choice):
    """Every face detector's short name (and `extra` names such as `none`), or with `runs`, the folder of a
    `maskmodel train-detector` run (returned as its absolute path); a detector that cannot run with the
    installed OpenCV is refused with the one-line reason and remedy of `missing_capability`."""

    def __init__(self, *extra: str, runs: bool = False) -> None:
        super().__init__([*DETECTOR_CLASSES, *extra])
        self.runs = runs

    def get_metavar(self, param, *args, **kwargs) -> str:
        choices = super().get_metavar(param, *args, **kwargs)
        return f"{choices[:-1]}|RUN{choices[-1]}" if self.runs else choices

    def convert(self, value, param, ctx):
        if self.runs and value not in self.choices and is_local_detector(value):
            return str(Path(value).resolve())
        if self.runs and value not in self.choices and Path(value).is_dir():
            self.fail(f"{value} is not a maskmodel train-detector run: it has no model.json of a face detector",
                      param, ctx)
        name = super().convert(value, param, ctx)
        problem = missing_capability(name) if name in DETECTOR_CLASSES else None
        if problem:
            self.fail(problem, param, ctx)
        return name


def face_detector_help(text: str) -> str:
    """`text`, and which detectors cannot run with the installed OpenCV, by name only: choosing one gives the
    reason and the remedy (`missing_capability`), so every detector option's help is not the same paragraph."""
    missing = [name for name in DETECTOR_CLASSES if missing_capability(name)]
    return text + (f" Not on this install: {', '.join(missing)} (choosing it names the remedy; docs/opencv.md)."
                   if missing else "")


# The detector that cut the default classifier's training crops: `train` and `evaluate classify` cut one face
# per image with it by default, as that classifier saw its faces (weights/manifest.json, `recipe`; records
# without one were cut with YuNet).
CROP_DETECTOR = model_info(DEFAULT_CLASSIFIER).recipe.get("face_detector", "yunet")

MODEL_OPTION = click.option("--model", default=DEFAULT_CLASSIFIER, show_default=True,
                            help="Classifier: NAME[@VERSION] from the zoo (maskmodel models list), or a run directory "
                                 "/ .onnx of `maskmodel train`.")


OPTIONS = (
    click.option("--face-detector", type=FaceDetectorChoice(runs=True), default=None,
                 help=face_detector_help(f"Face detector: a short name, or the folder of a `maskmodel train-detector` "
                                         f"run (its file checked against its card). Default: {DEFAULT_FACE_DETECTOR}; "
                                         "centerface-s (a quarter of its cost) with --preset fast or speed.")),
    click.option("--preset", type=click.Choice(PRESET_NAMES), default="default", show_default=True,
                 help="Settings measured on crowd-dev and ILC val (docs/benchmarks.md, python -m bench.frontier; "
                      "images/s against the AIZOO peer on 2 AVX2 cores of an AMD EPYC, crowd-dev held-back mAP50): "
                      "fast (centerface-s, 384 px, then 800 px where faces are small: 0.94x, 0.73), speed "
                      "(centerface-s, 384 then 1024 px: 0.75x, 0.75), default (centerface, 384 then 800 px: 0.53x, "
                      "0.82), accuracy (centerface 1024 px mirrored); the peer: 1.0x, 0.42. With --face-detector, "
                      "that detector's settings of the same name. Options given explicitly override it."),
    click.option("--threshold", type=click.FloatRange(0, 1), default=None,
                 help="Face detector score threshold (detector default if not given; CenterFace scores run "
                      "lower than YuNet's)."),
    click.option("--scales", default=None, metavar="PX[,PX...]",
                 help="centerface/yunet detection passes: longer image side of each, merged (detector default "
                      "if not given)."),
    click.option("--flip/--no-flip", default=None,
                 help="centerface/yunet: also detect in the mirrored image (about 2x the detection work; finds "
                      "more faces)."),
    click.option("--nms-iou", type=click.FloatRange(0, 1, min_open=True), default=None,
                 help="centerface/yunet: IoU above which overlapping boxes are merged (default 0.3; higher keeps "
                      "more faces of dense crowds)."),
    click.option("--first-pass", type=click.IntRange(0, 8192), default=None, metavar="PX",
                 help="centerface: longer image side of a cheap first pass; the --scales passes then run only on "
                      "photos where it finds no face or a face too small for it (0: no first pass; the presets "
                      "set it, docs/benchmarks.md)."),
    click.option("--box-adjust", default=None, metavar="DX,DY,SW,SH|FILE|STYLE|none",
                 help="Move and scale the reported boxes (centre by DX widths and DY heights, then width x SW, "
                      "height x SH), a calibration file from `evaluate detect --fit-box`, or a shipped style "
                      "fitted on an annotated set (crowd-dev). Default: the detector's own boxes."),
)


def detector_options(command: Callable) -> Callable:
    """Add the face-detector options to a Click command (parameters face_detector, preset, threshold,
    scales, flip, nms_iou, first_pass, box_adjust)."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command


# The command-line option of each `DetectorConfig` setting, so that Click names the option a bad value came from.
OPTION_OF = {"preset": "--preset", "score_threshold": "--threshold", "scales": "--scales", "flip": "--flip",
             "nms_threshold": "--nms-iou", "name": "--face-detector", "first_pass": "--first-pass"}


def detector_settings(face_detector: str, preset: str, threshold: float | None, scales: str | None,
                      flip: bool | None, nms_iou: float | None, box_adjust: str | None,
                      first_pass: int | None = None) -> dict:
    """The options as `AnnotateSettings` fields: `detector` (a `DetectorConfig`: the options given
    explicitly over the preset's) and `box_adjust`."""
    from maskmodel.detect.boxstyle import BoxAdjust

    try:
        given = {"score_threshold": threshold, "scales": _parse_scales(scales), "flip": flip, "nms_threshold": nms_iou,
                 "first_pass": first_pass}
        config = (DetectorConfig.preset(preset, face_detector, **given)
                  if face_detector is None or face_detector in DETECTOR_CLASSES
                  else DetectorConfig.trained(face_detector, preset, **given))
    except DetectorConfigError as error:
        raise click.BadParameter(str(error), param_hint=OPTION_OF.get(error.field)) from None
    try:
        adjust = None if box_adjust is None else BoxAdjust.parse(box_adjust, config.name)
    except (ValueError, OSError) as error:
        raise click.BadParameter(str(error), param_hint="--box-adjust") from None
    return {"detector": config, "box_adjust": adjust}


class JobsType(click.ParamType):
    """`--jobs`: a number of worker processes (1 or more), or `auto`."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            jobs = int(value)
        except ValueError:
            jobs = 0
        if jobs < 1:
            self.fail(f"expected a number of processes (1 or more) or auto, got {value!r}", param, ctx)
        return jobs


JOBS_HELP = ("Worker processes. auto: one per CPU this process may use (its affinity and cgroup quota), each "
             "running its networks on one thread, so the cores are used and never oversubscribed; one process for "
             "fewer than 64 photos, where starting more costs more than it saves (bench.jobs_plan). 1: one worker process, its "
             "networks on every core. Files are always decoded and written in worker processes: one that crashes "
             "costs its file an error row, not the run.")


def cap_jobs(ctx: click.Context, param: click.Parameter, jobs: int | str) -> int | str:
    """`--jobs` callback: a number is capped at the CPUs this process may use (more processes only cost memory),
    with a note; `auto` is decided with the number of photos (`maskmodel.batch.engines.worker_count`)."""
    from maskmodel.batch.engines import available_cpus

    cpus = available_cpus()
    if jobs == "auto":
        return jobs
    if jobs > cpus:
        click.echo(f"note: --jobs {jobs} is more than the {cpus} CPUs here: using {cpus}", err=True)
    return min(jobs, cpus)


def _parse_scales(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected pixel sizes like 640,1280, got {text!r}", param_hint="--scales") from None


def mask_detector(model: str, settings: dict, backend: str = "auto"):
    """A `MaskDetector` with these detector settings; a missing or corrupt model is one clear error."""
    from maskmodel import zoo
    from maskmodel.errors import UsageError
    from maskmodel.pipeline import MaskDetector

    try:
        return MaskDetector(settings["detector"], model, backend, settings["box_adjust"])
    except (zoo.ModelNotFoundError, UsageError) as error:  # a wrong model or run folder (a trained detector's)
        raise click.UsageError(str(error)) from error
    except (zoo.WeightsUnavailableError, zoo.ChecksumError, ValueError) as error:
        raise click.ClickException(str(error)) from error
