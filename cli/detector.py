"""The face-detector options shared by `annotate`, `predict`, `evaluate detect` and `watch`."""

from __future__ import annotations

from collections.abc import Callable

import click

from maskmodel.faces import YUNET_PRESETS

OPTIONS = (
    click.option("--face-detector", type=click.Choice(["yunet", "ssd", "haar"]), default="yunet", show_default=True),
    click.option("--preset", type=click.Choice(list(YUNET_PRESETS)), default="default", show_default=True,
                 help="YuNet settings measured on crowd-dev: speed (one pass at 640 px, about 2x faster), "
                      "accuracy (3 scales, mirrored passes, threshold 0.7, NMS IoU 0.5; about 3x slower). "
                      "Options given explicitly override it."),
    click.option("--threshold", type=click.FloatRange(0, 1), default=None,
                 help="Face detector score threshold (detector default if not given)."),
    click.option("--scales", default=None, metavar="PX[,PX...]",
                 help="YuNet detection passes: longer image side of each, merged by NMS (default 640,1024)."),
    click.option("--flip/--no-flip", default=None,
                 help="YuNet: also detect in the mirrored image (about 2x the detection work; finds more faces)."),
    click.option("--nms-iou", type=click.FloatRange(0, 1, min_open=True), default=None,
                 help="YuNet: IoU above which overlapping boxes are merged (default 0.3; higher keeps more "
                      "faces of dense crowds)."),
)


def detector_options(command: Callable) -> Callable:
    """Add the face-detector options to a Click command (parameters face_detector, preset, threshold,
    scales, flip, nms_iou)."""
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def detector_settings(face_detector: str, preset: str, threshold: float | None, scales: str | None,
                      flip: bool | None, nms_iou: float | None) -> dict:
    """The options as `AnnotateSettings` fields (and `maskmodel.faces.detector_options` arguments):
    those given explicitly, then the preset's."""
    if face_detector != "yunet":
        for name, value in (("--preset", preset != "default"), ("--scales", scales), ("--flip", flip),
                            ("--nms-iou", nms_iou)):
            if value:
                raise click.BadParameter("applies to --face-detector yunet only", param_hint=name)
    given = {"score_threshold": threshold, "scales": _parse_scales(scales), "flip": flip, "nms_threshold": nms_iou}
    chosen = {key: YUNET_PRESETS[preset].get(key) if value is None else value for key, value in given.items()}
    return {"face_detector": face_detector, **chosen, "flip": bool(chosen["flip"])}


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

    try:
        return MaskDetector(settings["face_detector"], model, backend, **options(**settings))
    except zoo.ModelNotFoundError as error:
        raise click.UsageError(str(error)) from error
    except (zoo.WeightsUnavailableError, zoo.ChecksumError, ValueError) as error:
        raise click.ClickException(str(error)) from error
