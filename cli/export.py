"""`maskmodel export`: ONNX (for OpenCV DNN) or TFLite (embedded) from a run or a published model.

A published model's ONNX ships in the package, so exporting it to ONNX copies that file (checked by its
sha256) and needs no TensorFlow; converting a Keras model (TFLite, or ONNX of a `.keras` file or run)
needs the `[train]` extra, and says so in one line when it is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from maskmodel.cli.verbosity import load_tensorflow
from maskmodel.runtime.extras import require_train_extra

T = TypeVar("T")


def _resolve_keras(model: str) -> Path:
    """A `.keras` file, a run directory holding `model.keras`, or a zoo name (NAME or NAME@VERSION)."""
    path = Path(model)
    if path.is_dir() and (path / "model.keras").is_file():
        return path / "model.keras"
    if path.is_file():
        return path
    import maskmodel

    return maskmodel.weights_path(model, format="keras")


def _published_onnx(model: str) -> tuple[Path, str] | None:
    """The verified ONNX file of zoo model `model` (NAME or NAME@VERSION) and its NAME@VERSION, or
    None when `model` is a path (a file or a run directory) rather than a zoo name."""
    if os.path.lexists(model):
        return None
    import maskmodel

    return maskmodel.weights_path(model, format="onnx"), maskmodel.model_info(model).spec


@click.command()
@click.argument("model")
@click.option("--format", "export_format", type=click.Choice(["onnx", "tflite"]), default="onnx", show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write; an existing file is replaced only with --overwrite.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--quantization", type=click.Choice(["float32", "float16", "int8"]), default="float16",
              show_default=True, help="TFLite only.")
@click.option("--representative", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="TFLite int8: a folder of training images (ROOT/<class>/*) to calibrate with.")
@click.option("--samples", type=click.IntRange(1), default=200, show_default=True,
              help="TFLite int8: how many representative images.")
def export(model, export_format, out_path, quantization, representative, samples, overwrite) -> None:
    """Export MODEL (a zoo name, a .keras file or a run directory) to ONNX or TFLite.

    A zoo model to ONNX is a checked copy of the published file: no TensorFlow needed. Everything else
    converts the Keras model and needs the [train] extra: pip install "maskmodel[train]" (in a
    checkout: pip install -e ".[train]").

    ONNX input: NCHW float32 RGB 0..255, exactly what cv2.dnn.blobFromImages(crops, 1.0, (S, S),
    swapRB=True) makes; output: softmax probabilities. TFLite input: NHWC float32 RGB 0..255, batch 1.
    """
    if os.path.lexists(out_path) and not overwrite:
        raise click.UsageError(f"{out_path} exists: use --overwrite to replace it")
    if export_format == "tflite" and quantization == "int8" and representative is None:
        raise click.BadParameter("int8 needs training images to calibrate with", param_hint="--representative")
    published = _published_onnx(model) if export_format == "onnx" else None
    if published is not None:
        _write(out_path, overwrite, lambda temp: shutil.copyfile(published[0], temp))
        click.echo(f"wrote {out_path}: the published ONNX of {published[1]} (sha256 checked against the manifest)")
        return
    require_train_extra(f"maskmodel export --format {export_format}" + (" of a Keras model" if export_format == "onnx" else ""))
    load_tensorflow()
    from maskmodel.training.export import export_tflite

    try:
        keras_path = _resolve_keras(model)
    except Exception as error:
        raise click.ClickException(str(error)) from error
    network = _load_keras(keras_path)
    if export_format == "onnx":
        difference = _write(out_path, overwrite, lambda temp: _export_checked_onnx(network, temp))
        click.echo(f"wrote {out_path}; max |cv2.dnn - Keras| on 4 random inputs: {difference:.2e}")
        return
    crops = _representative_crops(representative, network.input_shape[1], samples) if quantization == "int8" else None
    _write(out_path, overwrite, lambda temp: export_tflite(network, temp, quantization, crops))
    click.echo(f"wrote {out_path} ({quantization})")


def _write(out_path: Path, overwrite: bool, write: Callable[[Path], T]) -> T:
    """`write(temp)` to a fresh file beside --out, then the file moved to --out whole (never replacing a
    file that appeared meanwhile unless --overwrite, never writing through a link); what `write` returns."""
    from maskmodel.runtime.files import new_file

    try:
        with new_file(out_path, replace=overwrite) as temp:
            return write(temp)
    except FileExistsError:
        raise click.UsageError(f"{out_path} exists: use --overwrite to replace it") from None
    except OSError as error:
        raise click.ClickException(f"cannot write {out_path}: {error.strerror or error}") from None


def _export_checked_onnx(network, path: Path) -> float:
    """Export `network` to ONNX at `path`; the largest difference between cv2.dnn and Keras on 4 random inputs."""
    import cv2
    import numpy as np

    from maskmodel.training.export import export_onnx

    export_onnx(network, path)
    size = network.input_shape[1]
    probe = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(probe.transpose(0, 3, 1, 2).copy())
    return float(np.abs(net.forward() - network.predict(probe, verbose=0)).max())


def _load_keras(path: Path):
    """The Keras model in `path`, or a one-line error saying why it cannot be used."""
    import zipfile

    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise click.ClickException(f"{path} is not a .keras model file (a zip archive): damaged or of another kind")
    import keras

    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises ValueError, TypeError, KeyError, OSError for bad files
        if "Lambda" in str(error):
            raise click.ClickException(f"{path} holds a Lambda layer (Python code): maskmodel never runs code "
                                       "from a model file") from None
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise click.ClickException(f"cannot load {path} as a Keras model ({first}): export a model that "
                                   "maskmodel train wrote, or a zoo name") from None


def _representative_crops(root: Path, size: int, samples: int):
    """Face crops (RGB, the runtime crop policy) of up to `samples` images spread over the folder."""
    import cv2
    import numpy as np

    from maskmodel.io.crawl import iter_inputs
    from maskmodel.classify.crops import CropPolicy, crop_face
    from maskmodel.detect.detector_config import one_face_detector
    from maskmodel.detect.faces import largest_face
    from maskmodel.io.imageio import ImageReadError, read_image

    files = list(iter_inputs([root]))
    chosen = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(samples, len(files)))]
    detector, crops = one_face_detector(), []
    for item in chosen:
        try:
            image = read_image(item.path)
        except ImageReadError:
            continue
        box, _ = largest_face(detector.detect(image), image)
        crops.append(cv2.cvtColor(crop_face(image, box, CropPolicy(), size), cv2.COLOR_BGR2RGB))
    return np.stack(crops).astype(np.float32)
