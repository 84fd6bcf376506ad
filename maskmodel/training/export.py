"""Export a trained classifier to ONNX for OpenCV's DNN module (no TensorFlow at inference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
    import onnx

    onnx.save(opencv_compatible(onnx.load(str(path))), str(path))
    return path


def opencv_compatible(model):
    """Rewrite the two node forms older OpenCV importers reject (Debian's C++ OpenCV 4.6 among them).

    - `Clip(x, 0, 6)` (ReLU6, min/max as inputs since opset 11) becomes `Relu(x) - Relu(x - 6)`;
    - `Squeeze(x, axes=[2, 3])` after global pooling (axes as an input since opset 13) becomes
      `Flatten(x, axis=1)`.

    Both are exact rewrites (parity with Keras is tested to 1e-4); the opset is unchanged.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {item.name: numpy_helper.to_array(item) for item in graph.initializer}
    six = "opencv_compat_six"
    graph.initializer.append(numpy_helper.from_array(np.array(6.0, np.float32), six))
    nodes = []
    for node in graph.node:
        inputs = list(node.input)
        if node.op_type == "Clip" and len(inputs) == 3 and \
                constants.get(inputs[1]) == 0.0 and constants.get(inputs[2]) == 6.0:
            x, y = inputs[0], node.output[0]
            nodes += [
                helper.make_node("Relu", [x], [f"{y}/relu"]),
                helper.make_node("Sub", [x, six], [f"{y}/minus6"]),
                helper.make_node("Relu", [f"{y}/minus6"], [f"{y}/excess"]),
                helper.make_node("Sub", [f"{y}/relu", f"{y}/excess"], [y]),
            ]
        elif node.op_type == "Squeeze" and len(inputs) == 2 and list(constants.get(inputs[1], [])) == [2, 3]:
            nodes.append(helper.make_node("Flatten", [inputs[0]], list(node.output), axis=1))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    unused = [item for item in graph.initializer if item.name not in used]
    for item in unused:
        graph.initializer.remove(item)
    return model


def export_tflite(model, path: Path, quantization: str = "float16", representative=None) -> Path:
    """Write `model` (NHWC RGB 0..255 input, batch 1) as TFLite for embedded devices.

    Args:
        model: the Keras classifier.
        path: the `.tflite` file to write.
        quantization: `"float32"`, `"float16"` (weights in float16) or `"int8"` (full-integer weights and
            activations; input and output stay float32 so the contract is unchanged).
        representative: for `"int8"`: an array of RGB 0..255 crops from the training data used to
            calibrate activation ranges.
    """
    import tensorflow as tf

    if quantization not in ("float32", "float16", "int8"):
        raise ValueError(f"Expected quantization in ('float32', 'float16', 'int8'). Received: {quantization!r}")
    options: dict = {}
    if quantization == "float16":
        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": _float16_spec(tf)}
    elif quantization == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("Expected representative crops for int8 quantization. Received: representative=None")

        def dataset():
            for crop in representative:
                yield [np.asarray(crop, np.float32)[None]]

        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "representative_dataset": dataset}
    size = model.input_shape[1]
    path = Path(path)
    model.export(str(path), format="litert", input_signature=[tf.TensorSpec((1, size, size, 3), tf.float32)],
                 verbose=False, **options)
    return path


def _float16_spec(tf):
    spec = tf.lite.TargetSpec()
    spec.supported_types = [tf.float16]
    return spec
