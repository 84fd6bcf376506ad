"""`maskmodel train`: fine-tune MobileNetV2 on folder-per-class datasets."""

from __future__ import annotations

from pathlib import Path

import click

from maskmodel.cli.detector import CROP_DETECTOR, FaceDetectorChoice
from maskmodel.cli.verbosity import load_tensorflow
from maskmodel.errors import UsageError
from maskmodel.runtime.extras import require_train_extra
from maskmodel.zoo import DEFAULT_CLASSIFIER, model_info

SMOKE_IMAGES = 8  # --smoke: images per class and split
DEFAULT_MODEL = model_info(DEFAULT_CLASSIFIER)  # the defaults of width, input size and crop detector


def phase_epochs(epochs: int | None, head: int | None, finetune: int | None, smoke: bool = False) -> tuple[int, int]:
    """Epochs of phase 1 and phase 2: --head-epochs / --finetune-epochs, else --epochs, else 1 with --smoke,
    else 20 and 12."""
    first = lambda *values: next(value for value in values if value is not None)  # noqa: E731
    return first(head, epochs, 1 if smoke else None, 20), first(finetune, epochs, 1 if smoke else None, 12)


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Run directory to write; if it holds a run, the next free OUT-2, OUT-3, ... (unless --overwrite).")
@click.option("--overwrite", is_flag=True, help="Write into --out even if it holds an earlier run (its files are replaced).")
@click.option("--alpha", type=click.Choice(["0.35", "0.5", "0.75", "1.0", "1.3", "1.4"]),
              default=str(DEFAULT_MODEL.architecture["alpha"]), show_default=True,
              help="MobileNetV2 width multiplier (default: the published default classifier's).")
@click.option("--input-size", type=click.Choice(["96", "128", "160", "192", "224"]),
              default=str(DEFAULT_MODEL.input["size"]), show_default=True,
              help="Classifier input side in pixels (default: the published default classifier's).")
@click.option("--weights", default="imagenet", show_default=True,
              help="'imagenet', 'none', or a .keras/.weights.h5 file to start from.")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Epochs of each phase (both phases at most N, early stopping may end one sooner; "
                   "--epochs 1 runs 2 epochs in all). Default: 20 for phase 1, 12 for phase 2.")
@click.option("--head-epochs", type=click.IntRange(0), default=None,
              help="Phase 1 epochs (head only), overriding --epochs for phase 1.  [default: 20]")
@click.option("--finetune-epochs", type=click.IntRange(0), default=None,
              help="Phase 2 epochs (top blocks unfrozen), overriding --epochs for phase 2.  [default: 12]")
@click.option("--smoke", is_flag=True,
              help=f"A quick try of the whole pipeline: at most {SMOKE_IMAGES} images per class and split, one "
                   "augmented copy, 1 epoch per phase (unless given); the model it writes is not a useful one.")
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
@click.option("--face-detector", type=FaceDetectorChoice(), default=CROP_DETECTOR, show_default=True,
              help="Detector that cuts the training crops (use the one you will run the model with; default: the one "
                   "the published default classifier's crops were cut with).")
@click.option("--quiet", is_flag=True, help="No progress bars and no per-epoch lines.")
def train(data, out_dir, overwrite, alpha, input_size, weights, epochs, head_epochs, finetune_epochs, smoke,
          first_block, copies, margin, seed, exclude, photos, ignore_labels, face_detector, quiet) -> None:
    """Fine-tune a mask classifier on DATA (folder-per-class, optionally train/val/test) and --photos.

    Phase 1 trains the head on cached features of the frozen backbone; phase 2 unfreezes the top
    blocks at a low learning rate. --epochs N sets both phases to N epochs (--head-epochs and
    --finetune-epochs set one phase each); by default 20 and 12. Writes model.keras, model.onnx,
    metrics.json, curves.png, confusion.png and dataset_report.json into OUT.

    Needs the [train] extra (TensorFlow, Keras): pip install "maskmodel[train]" (in a checkout:
    pip install -e ".[train]"). Offline, install Keras' ImageNet files first:
    maskmodel models install --from ../shared/models/keras
    """
    require_train_extra("maskmodel train")
    load_tensorflow()
    from maskmodel.detect.detector_config import create_face_detector, one_face_detector
    from maskmodel.training.rundir import new_run_folder
    from maskmodel.training.train import TrainConfig, TrainingDataError
    from maskmodel.training.train import train as run_training

    head_epochs, finetune_epochs = phase_epochs(epochs, head_epochs, finetune_epochs, smoke)
    config = TrainConfig(
        alpha=float(alpha), input_size=int(input_size), weights=None if weights == "none" else weights,
        crop_margin=margin, first_trainable_block=first_block, augmented_copies=1 if smoke else copies,
        head_epochs=head_epochs, finetune_epochs=finetune_epochs, seed=seed, exclude=list(exclude),
        ignore_labels=list(ignore_labels),
        images_per_class=SMOKE_IMAGES if smoke else None,
    )
    if config.weights == "imagenet":  # before any work: cutting crops takes minutes
        from maskmodel.training.imagenet import check_imagenet_weights

        check_imagenet_weights(config.alpha)
    elif config.weights is not None:
        from maskmodel.training.builder import check_weights_file

        check_weights_file(config.weights)
    given, out_dir = out_dir, new_run_folder(out_dir, [*data, *photos], overwrite)
    if out_dir != given:
        click.echo(f"{given} holds an earlier run: writing this one to {out_dir} (--overwrite replaces it)", err=True)
    try:
        metrics = run_training(list(data), out_dir, one_face_detector(face_detector), config, progress=not quiet,
                               photos=list(photos), photo_detector=create_face_detector(face_detector))
    except UsageError:
        raise
    except (TrainingDataError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for split, result in metrics["splits"].items():
        counts = ", ".join(f"{name} {count}" for name, count in metrics["counts"][split].items())
        click.echo(f"{split:5s} accuracy {result['accuracy']:.4f}  balanced {result['balanced_accuracy']:.4f}"
                   f"  ({result['count']} images: {counts})" + ("  TOO SMALL TO MEASURE" if "warning" in result else ""))
    for warning in metrics["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"model: {out_dir / 'model.onnx'} (and model.keras; use it with --model {out_dir})\n"
               f"curves: {out_dir / 'curves.png'}\nmetrics: {out_dir / 'metrics.json'}"
               + (f" (confusion matrix: {out_dir / 'confusion.png'})" if (out_dir / "confusion.png").exists() else ""))

