"""`maskmodel train`: fine-tune MobileNetV2 on folder-per-class datasets."""

from __future__ import annotations

from pathlib import Path

import click

from maskmodel.cli.detector import FaceDetectorChoice
from maskmodel.zoo import DEFAULT_CLASSIFIER, model_info


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Run directory to write; if it holds a run, the next free OUT-2, OUT-3, ... (unless --overwrite).")
@click.option("--overwrite", is_flag=True, help="Write into --out even if it holds an earlier run (its files are replaced).")
@click.option("--alpha", type=click.Choice(["0.35", "0.5", "0.75", "1.0", "1.3", "1.4"]),
              default=str(model_info(DEFAULT_CLASSIFIER).architecture["alpha"]), show_default=True,
              help="MobileNetV2 width multiplier (default: the published default classifier's).")
@click.option("--input-size", type=click.Choice(["96", "128", "160", "192", "224"]), default="224",
              show_default=True, help="Classifier input side in pixels.")
@click.option("--weights", default="imagenet", show_default=True,
              help="'imagenet', 'none', or a .keras/.weights.h5 file to start from.")
@click.option("--head-epochs", type=click.IntRange(0), default=20, show_default=True,
              help="Phase 1 epochs (head only).")
@click.option("--epochs", "finetune_epochs", type=click.IntRange(0), default=12, show_default=True,
              help="Phase 2 epochs (top blocks unfrozen).")
@click.option("--unfreeze-from", "first_block", type=click.IntRange(1, 16), default=12, show_default=True,
              help="First MobileNetV2 block trained in phase 2.")
@click.option("--copies", type=click.IntRange(1), default=8, show_default=True,
              help="Augmented copies of each training image.")
@click.option("--margin", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Face crop margin (fraction of the box on each side).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--exclude", multiple=True, help="File name to leave out (repeatable).")
@click.option("--photos", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Photo set with face boxes (images/ + annotations/ in PASCAL VOC), repeatable: each "
                   "face is cut at the runtime detector's matching box, labels from the annotation.")
@click.option("--ignore-label", "ignore_labels", multiple=True,
              help="Photo face label to leave out of training (repeatable), e.g. mask_incorrect for a "
                   "two-class model trained on three-class photos.")
@click.option("--face-detector", type=FaceDetectorChoice(), default="yunet", show_default=True,
              help="Detector that cuts the training crops (use the runtime's).")
@click.option("--quiet", is_flag=True, help="No progress bars and no per-epoch lines.")
@click.option("--verbose", is_flag=True, help="Also TensorFlow's own start-up and device logs.")
def train(data, out_dir, overwrite, alpha, input_size, weights, head_epochs, finetune_epochs, first_block, copies,
          margin, seed, exclude, photos, ignore_labels, face_detector, quiet, verbose) -> None:
    """Fine-tune a mask classifier on DATA (folder-per-class, optionally train/val/test) and --photos.

    Phase 1 trains the head on cached features of the frozen backbone; phase 2 unfreezes the top
    blocks at a low learning rate. Writes model.keras, model.onnx, metrics.json, curves.png,
    confusion.png and dataset_report.json into OUT.
    """
    import os

    if not verbose:  # read by TensorFlow when it loads, below
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    from maskmodel.detect.detector_config import create_face_detector, one_face_detector
    from maskmodel.training.rundir import new_run_folder
    from maskmodel.training.train import TrainConfig, TrainingDataError
    from maskmodel.training.train import train as run_training

    config = TrainConfig(
        alpha=float(alpha), input_size=int(input_size), weights=None if weights == "none" else weights,
        crop_margin=margin, first_trainable_block=first_block, augmented_copies=copies,
        head_epochs=head_epochs, finetune_epochs=finetune_epochs, seed=seed, exclude=list(exclude),
        ignore_labels=list(ignore_labels),
    )
    if config.weights == "imagenet":  # before any work: cutting crops takes minutes
        from maskmodel.training.imagenet import check_imagenet_weights

        check_imagenet_weights(config.alpha)
    given, out_dir = out_dir, new_run_folder(out_dir, [*data, *photos], overwrite)
    if out_dir != given:
        click.echo(f"{given} holds an earlier run: writing this one to {out_dir} (--overwrite replaces it)", err=True)
    try:
        metrics = run_training(list(data), out_dir, one_face_detector(face_detector), config, progress=not quiet,
                               photos=list(photos), photo_detector=create_face_detector(face_detector))
    except (TrainingDataError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for split, result in metrics["splits"].items():
        click.echo(f"{split:5s} accuracy {result['accuracy']:.4f}  balanced {result['balanced_accuracy']:.4f}"
                   f"  ({result['count']} images)")
    click.echo(f"run written to {out_dir}")
