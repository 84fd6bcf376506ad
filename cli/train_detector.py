"""`maskmodel train-detector`: fine-tune the CenterFace face detector on your own face boxes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from maskmodel.cli.verbosity import load_tensorflow
from maskmodel.runtime.extras import require_train_extra

SMOKE_PHOTOS, SMOKE_STEPS = 8, 4


def held_out(images: list, fraction: float) -> tuple[list, list]:
    """`images` split into training and validation photos by a hash of each file name (deterministic, and a
    photo keeps its side when others are added); no validation part below 10 photos."""
    if fraction <= 0 or len(images) < 10:
        return images, []
    is_val = [int(hashlib.sha256(i.image_path.name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction for i in images]
    return [i for i, v in zip(images, is_val) if not v], [i for i, v in zip(images, is_val) if v]


@click.command("train-detector")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Run directory to write; if it holds a run, the next free OUT-2, OUT-3, ... (unless --overwrite "
                   "or --resume).")
@click.option("--overwrite", is_flag=True, help="Write into --out even if it holds an earlier run.")
@click.option("--resume", is_flag=True, help="Go on with the killed run in --out (same DATA and options).")
@click.option("--val", "val_data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Face-box set to measure on (repeatable). Default: a tenth of DATA's photos, held out by name.")
@click.option("--steps", type=click.IntRange(1), default=600, show_default=True,
              help="Training steps (batches).")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--input-size", type=click.IntRange(64), default=320, show_default=True,
              help="Side of the square training crops in pixels (a multiple of 32).")
@click.option("--lr", "learning_rate", type=click.FloatRange(0, min_open=True), default=None,
              help="Peak learning rate (Adam; warm-up, then cosine decay). Default: 1e-4 to fine-tune, 1e-3 for a "
                   "--student-alpha network (its neck and heads start from scratch).")
@click.option("--unlabelled", type=click.Choice(["ignore", "teacher"]), default="ignore", show_default=True,
              help="Faces the original detector finds where no box is (crowds are labelled non-exhaustively): "
                   "ignore them, or teach the original's score there.")
@click.option("--student-alpha", type=click.Choice(["0.35", "0.5", "0.75"]), default=None,
              help="Train a narrower CenterFace instead (MobileNetV2 of this width, from Keras' ImageNet file: about "
                   "a quarter to half the cost) to reproduce the published one's maps on every crop (distillation) "
                   "and your boxes. Offline, install the ImageNet file first: maskmodel models install --from "
                   "../shared/models/keras")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--smoke", is_flag=True, help=f"A quick try of the whole pipeline: at most {SMOKE_PHOTOS} photos, "
                                            f"{SMOKE_STEPS} steps of 2 crops of 256 px; not a useful detector.")
@click.option("--quiet", is_flag=True, help="No progress bar and no step lines.")
def train_detector(data, out_dir, overwrite, resume, val_data, steps, batch_size, input_size, learning_rate,
                   unlabelled, student_alpha, seed, smoke, quiet) -> None:
    """Fine-tune the CenterFace face detector on the face boxes of DATA.

    DATA: VOC folders (annotations/*.xml, images/), YOLO folders (images/, labels/*.txt, classes.txt) or
    COCO .json files; every box is a face, whatever its class. Writes model.onnx, model.keras, model.json
    (the detector's card), metrics.json and train.log into OUT; use the run with --face-detector OUT in
    annotate, predict, evaluate detect and watch.

    Needs the [train] extra (TensorFlow, Keras): pip install "maskmodel[train]" (in a checkout:
    pip install -e ".[train]"). Starts from the published CenterFace: offline, install it first with
    maskmodel models install --from ../shared/models/face
    """
    require_train_extra("maskmodel train-detector")
    from maskmodel.errors import UsageError
    from maskmodel.training.detector_data import read_face_boxes
    from maskmodel.training.rundir import check_outside_data, new_run_folder
    from maskmodel.zoo.downloads import weights_path

    images = [image for source in data for image in read_face_boxes(source)]
    val_images = [image for source in val_data for image in read_face_boxes(source)]
    if not val_data:
        images, val_images = held_out(images, 0.1)
    if smoke:
        images, val_images = images[:SMOKE_PHOTOS], val_images[:2]
        steps, batch_size, input_size = SMOKE_STEPS, 2, 256
    if input_size % 32:
        raise click.BadParameter(f"expected a multiple of 32, got {input_size}", param_hint="--input-size")
    teacher = weights_path("centerface", format="onnx")  # before TensorFlow loads: a missing file is one line
    if student_alpha is not None:
        from maskmodel.training.imagenet import check_imagenet_weights

        check_imagenet_weights(float(student_alpha))
    folders = [p if p.is_dir() else p.parent for p in (*data, *val_data)]
    if resume:
        check_outside_data(out_dir, folders)
        if not (out_dir / ".checkpoint" / "state.json").is_file():
            raise UsageError(f"{out_dir} holds no killed run to resume: start one without --resume")
    else:
        given, out_dir = out_dir, new_run_folder(out_dir, folders, overwrite)
        if out_dir != given:
            click.echo(f"{given} holds an earlier run: writing this one to {out_dir} (--overwrite replaces it)", err=True)
    load_tensorflow()
    from maskmodel.training.train_detector import DetectorTrainConfig
    from maskmodel.training.train_detector import train_detector as run_training

    config = DetectorTrainConfig(steps=steps, batch_size=batch_size, input_size=input_size,
                                 learning_rate=learning_rate or (1e-3 if student_alpha else 1e-4),
                                 unlabelled=unlabelled, seed=seed,
                                 student_alpha=None if student_alpha is None else float(student_alpha),
                                 checkpoint_every=min(50, steps), data=[str(p) for p in data],
                                 val_data=[str(p) for p in val_data] or ["a tenth of DATA, held out by name"])
    metrics = run_training(images, val_images, out_dir, teacher, config, resume=resume, progress=not quiet,
                           log=click.echo if not quiet else lambda line: None)
    if "score_threshold" in metrics:
        click.echo(f"score threshold {metrics['score_threshold']}: the fine-tuned detector's boxes as precise as the "
                   "original's at its threshold on the validation photos (recorded in the card)")
    for name, result in metrics.get("val", {}).items():
        sizes = ", ".join(f"{size} {recall:.3f}" for size, recall in result["recall_by_size"].items())
        click.echo(f"{name:10s} face AP50 {result['face_ap50']:.3f}  AP30 {result['face_ap30']:.3f}  "
                   f"recall {result['recall']:.3f} (by size: {sizes})  ({result['images']} val photos)")
    click.echo(f"detector: {out_dir / 'model.onnx'} (use it with --face-detector {out_dir})\n"
               f"card: {out_dir / 'model.json'}\nmetrics: {out_dir / 'metrics.json'}")
