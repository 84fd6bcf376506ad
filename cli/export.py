"""`maskmodel export`: ONNX (for OpenCV DNN) or TFLite (embedded) from a run or a published model."""

from __future__ import annotations

from pathlib import Path

import click


def _resolve_keras(model: str) -> Path:
    """A `.keras` file, a run directory holding `model.keras`, or a zoo name (NAME or NAME@VERSION)."""
    path = Path(model)
    if path.is_dir() and (path / "model.keras").is_file():
        return path / "model.keras"
    if path.is_file():
        return path
    import maskmodel

    return maskmodel.weights_path(model, format="keras")


@click.command()
@click.argument("model")
@click.option("--format", "export_format", type=click.Choice(["onnx", "tflite"]), default="onnx", show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quantization", type=click.Choice(["float32", "float16", "int8"]), default="float16",
              show_default=True, help="TFLite only.")
@click.option("--representative", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="TFLite int8: a folder of training images (ROOT/<class>/*) to calibrate with.")
@click.option("--samples", type=click.IntRange(1), default=200, show_default=True,
              help="TFLite int8: how many representative images.")
def export(model, export_format, out_path, quantization, representative, samples) -> None:
    """Export MODEL (a .keras file, a run directory, or a zoo name) to ONNX or TFLite.

    ONNX input: NCHW float32 RGB 0..255, exactly what cv2.dnn.blobFromImages(crops, 1.0, (S, S),
    swapRB=True) makes; output: softmax probabilities. TFLite input: NHWC float32 RGB 0..255, batch 1.
    """
    import keras
    import numpy as np

    from maskmodel.training.export import export_onnx, export_tflite

    try:
        keras_path = _resolve_keras(model)
    except Exception as error:
        raise click.ClickException(str(error)) from error
    network = keras.saving.load_model(keras_path)
    size = network.input_shape[1]
    if export_format == "onnx":
        export_onnx(network, out_path)
        import cv2

        probe = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
        net = cv2.dnn.readNetFromONNX(str(out_path))
        net.setInput(probe.transpose(0, 3, 1, 2).copy())
        difference = float(np.abs(net.forward() - network.predict(probe, verbose=0)).max())
        click.echo(f"wrote {out_path}; max |cv2.dnn - Keras| on 4 random inputs: {difference:.2e}")
        return
    crops = None
    if quantization == "int8":
        if representative is None:
            raise click.BadParameter("int8 needs training images to calibrate with", param_hint="--representative")
        crops = _representative_crops(representative, size, samples)
    export_tflite(network, out_path, quantization, crops)
    click.echo(f"wrote {out_path} ({quantization})")


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
