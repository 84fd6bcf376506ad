"""Export a trained classifier to ONNX for OpenCV's DNN module (no TensorFlow at inference)."""

from __future__ import annotations

from pathlib import Path

ONNX_INPUT_NAME = "image_nchw"
ONNX_OPSET = 17


def export_onnx(model, path: Path) -> Path:
    """Write `model` as ONNX taking NCHW float32 RGB 0..255 (dynamic batch), output softmax.

    The input is exactly what `cv2.dnn.blobFromImages(faces, 1.0, (S, S), swapRB=True)` produces; the
    graph transposes it to the Keras model's NHWC and rescales to [-1, 1] itself.
    """
    import keras
    import tensorflow as tf

    size = model.input_shape[1]
    inputs = keras.Input((3, size, size), name=ONNX_INPUT_NAME)
    outputs = model(keras.layers.Permute((2, 3, 1), name="nchw_to_nhwc")(inputs))
    wrapper = keras.Model(inputs, outputs, name=f"{model.name}_nchw")
    signature = [tf.TensorSpec((None, 3, size, size), tf.float32, name=ONNX_INPUT_NAME)]
    path = Path(path)
    wrapper.export(str(path), format="onnx", input_signature=signature, opset_version=ONNX_OPSET,
                   verbose=False)
    return path
