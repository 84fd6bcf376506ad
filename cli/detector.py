"""The face-detector options shared by `annotate`, `predict`, `evaluate detect` and `watch`."""

from __future__ import annotations

from collections.abc import Callable

import click

from maskmodel.faces import DEFAULT_FACE_DETECTOR, MULTI_PASS, PRESET_NAMES, PRESETS, available_detectors

OPTIONS = (
    click.option("--face-detector", type=click.Choice(available_detectors()), default=DEFAULT_FACE_DETECTOR,
                 show_default=True,
                 help="Face detector. haar is offered only where OpenCV has a cascade classifier "
                      "(pip install opencv-contrib-python; OpenCV 5's opencv-python has none)."),
    click.option("--preset", type=click.Choice(PRESET_NAMES), default="default", show_default=True,
                 help="centerface and yunet settings measured on crowd-dev and ILC val (docs/benchmarks.md): "
                      "speed (fewer or smaller passes), accuracy (more passes, mirrored; several times slower). "
                      "Options given explicitly override it."),
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
    click.option("--box-adjust", default=None, metavar="DX,DY,SW,SH|FILE|none",
                 help="Move and scale the reported boxes (centre by DX widths and DY heights, then width x SW, "
                      "height x SH), or a calibration file from `evaluate detect --fit-box`; 'none': the "
                      "detector's own boxes. Default: the detector's measured box style."),
)


def detector_options(command: Callable) -> Callable:
    """Add the face-detector options to a Click command (parameters face_detector, preset, threshold,
    scales, flip, nms_iou, box_adjust)."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def detector_settings(face_detector: str, preset: str, threshold: float | None, scales: str | None,
                      flip: bool | None, nms_iou: float | None, box_adjust: str | None) -> dict:
    """The options as `AnnotateSettings` fields (and, but for `box_adjust`, `maskmodel.faces.detector_options`
    arguments): those given explicitly, then the preset's."""
    from maskmodel.boxstyle import BoxAdjust

    if face_detector not in MULTI_PASS:
        for name, value in (("--preset", preset != "default"), ("--scales", scales), ("--flip", flip),
                            ("--nms-iou", nms_iou)):
            if value:
                raise click.BadParameter(f"applies to --face-detector {' or '.join(MULTI_PASS)} only", param_hint=name)
    try:
        adjust = None if box_adjust is None else BoxAdjust.parse(box_adjust)
    except (ValueError, OSError) as error:
        raise click.BadParameter(str(error), param_hint="--box-adjust") from None
    given = {"score_threshold": threshold, "scales": _parse_scales(scales), "flip": flip, "nms_threshold": nms_iou}
    preset_options = PRESETS.get(face_detector, {}).get(preset, {})
    chosen = {key: preset_options.get(key) if value is None else value for key, value in given.items()}
    return {"face_detector": face_detector, **chosen, "flip": bool(chosen["flip"]), "box_adjust": adjust}


def _parse_scales(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        scales = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected pixel sizes like 640,1280, got {text!r}", param_hint="--scales") from None
    if any(s < 32 for s in scales):
        raise click.BadParameter("each scale must be at least 32 px", param_hint="--scales")
    return scales


def mask_detector(model: str, settings: dict, backend: str = "auto"):
    """A `MaskDetector` with these detector settings; a missing or corrupt model is one clear error."""
    from maskmodel import zoo
    from maskmodel.faces import detector_options as options
    from maskmodel.pipeline import MaskDetector

    settings = dict(settings)
    box_adjust = settings.pop("box_adjust")
    try:
        return MaskDetector(settings["face_detector"], model, backend, box_adjust, **options(**settings))
    except zoo.ModelNotFoundError as error:
        raise click.UsageError(str(error)) from error
    except (zoo.WeightsUnavailableError, zoo.ChecksumError, ValueError) as error:
        raise click.ClickException(str(error)) from error
