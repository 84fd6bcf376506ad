"""`build_centerface()`: CenterFace as a Keras model (MobileNetV2 backbone, 24-channel neck, four heads).

The architecture of the published CenterFace (Star-Clouds, MIT): a MobileNetV2 with plain ReLU up to its
320-channel stage; a neck that reduces it to 24 channels and upsamples three times (2x2 transposed
convolution, batch norm, ReLU), each time adding a 1x1 convolution of the 96-, 32- and 24-channel stage;
a 3x3 convolution; heads `heat` (1, sigmoid), `scale` (2: log h, log w), `offset` (2: y, x) and
`landmarks` (10), all at stride 4. Input: RGB 0..255 NHWC, height and width multiples of 32.

The backbone's layers carry `keras.applications.MobileNetV2`'s names, so Keras' ImageNet file loads into
it by name (`weights="imagenet"`, any width). Its stride-2 convolutions pad one pixel on every side, as the
published network does (Keras' own MobileNetV2 pads bottom/right only), so `port_centerface` reproduces
the published maps. The published file has its batch norm merged into the backbone's convolutions; the
port keeps a batch-norm layer after each (identity statistics, the merged bias as its offset) so that
a fine-tuned or a freshly built model has the same layers.

Reference:
    Xu et al., "CenterFace: Joint Face Detection and Alignment Using Face as Point", 2019.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

STRIDE = 4
NECK = 24
HEADS = {"heat": 1, "scale": 2, "offset": 2, "landmarks": 10}
# (expansion, output channels, repeats, first stride) of MobileNetV2's bottleneck stages, up to 320 channels.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LATERAL_BLOCKS = (12, 5, 2)  # the last block of the 96-, 32- and 24-channel stages, added on the way up
BN_EPSILON = 1e-3
HEAT_PRIOR = -2.19  # the heat head's starting bias: a face score of 0.1 everywhere (CenterNet), not 0.5


def _channels(channels: float, alpha: float) -> int:
    """MobileNetV2's rounding of a width-scaled channel count to a multiple of 8."""
    scaled = channels * alpha
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def build_centerface(alpha: float = 1.0, weights: str | os.PathLike | None = None, activation: str = "relu",
                     name: str | None = None, imagenet_input: bool | None = None) -> keras.Model:
    """Build CenterFace (or a narrower student of the same shape) as a Keras model.

    Args:
        alpha: MobileNetV2 width of the backbone (the published CenterFace is `1.0`). Defaults to `1.0`.
        weights: `None` (random), `"imagenet"` (the backbone from Keras' ImageNet file of this width) or a
            `.weights.h5` / `.keras` file of this architecture. Use `port_centerface` for the published model.
        activation: `"relu"` (the published network) or `"relu6"` (Keras' MobileNetV2). Defaults to `"relu"`.
        name: model name. Defaults to `centerface_mobilenetv2_{alpha}`.
        imagenet_input: rescale the pixels to [-1, 1] inside the graph, as Keras' ImageNet weights expect (the
            published network takes 0..255 as they are). Defaults to `True` with `weights="imagenet"`.

    Returns:
        A model mapping `(batch, H, W, 3)` RGB 0..255 to the four stride-4 maps `heat`, `scale`, `offset`,
        `landmarks` (NHWC).
    """
    import keras
    from keras import layers

    if activation not in ("relu", "relu6"):
        raise ValueError(f"Expected activation in ('relu', 'relu6'). Received: activation={activation!r}")
    cap = 6.0 if activation == "relu6" else None

    def act(x, layer_name: str, limit: float | None = cap):
        return layers.ReLU(limit, name=layer_name)(x)

    def conv_bn(x, filters: int, kernel: int, stride: int, prefix: str, bn_name: str, relu: str | None):
        if stride == 2:
            x = layers.ZeroPadding2D(1, name=f"{prefix}_pad")(x)
        x = layers.Conv2D(filters, kernel, stride, "valid" if stride == 2 else "same", use_bias=False,
                          name=prefix)(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.999, name=bn_name)(x)
        return act(x, relu) if relu else x

    def depthwise_bn(x, stride: int, prefix: str):
        if stride == 2:
            x = layers.ZeroPadding2D(1, name=f"{prefix}_pad")(x)
        x = layers.DepthwiseConv2D(3, stride, "valid" if stride == 2 else "same", use_bias=False,
                                   name=f"{prefix}_depthwise")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.999, name=f"{prefix}_depthwise_BN")(x)
        return act(x, f"{prefix}_depthwise_relu")

    inputs = keras.Input((None, None, 3), name="image")
    if weights == "imagenet" if imagenet_input is None else imagenet_input:
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    else:
        x = inputs
    x = conv_bn(x, _channels(32, alpha), 3, 2, "Conv1", "bn_Conv1", "Conv1_relu")
    block, lateral = 0, {}
    for expansion, channels, repeats, first_stride in STAGES:
        out_channels = _channels(channels, alpha)
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            prefix = "expanded_conv" if block == 0 else f"block_{block}"
            shortcut = x
            if expansion != 1:
                x = conv_bn(x, expansion * x.shape[-1], 1, 1, f"{prefix}_expand", f"{prefix}_expand_BN",
                            f"{prefix}_expand_relu")
            x = depthwise_bn(x, stride, prefix)
            x = conv_bn(x, out_channels, 1, 1, f"{prefix}_project", f"{prefix}_project_BN", None)
            if stride == 1 and shortcut.shape[-1] == out_channels:
                x = layers.Add(name=f"{prefix}_add")([shortcut, x])
            lateral[block] = x
            block += 1
    # The neck and heads use plain ReLU at every width, so a student's can start as the published ones.
    x = act(layers.Conv2D(NECK, 1, name="neck_reduce")(x), "neck_reduce_relu", None)
    for level, source in enumerate(LATERAL_BLOCKS):
        x = layers.Conv2DTranspose(NECK, 2, 2, use_bias=False, name=f"neck_up{level}")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"neck_up{level}_BN")(x)
        x = act(x, f"neck_up{level}_relu", None)
        side = act(layers.Conv2D(NECK, 1, name=f"neck_lateral{level}")(lateral[source]),
                   f"neck_lateral{level}_relu", None)
        x = layers.Add(name=f"neck_add{level}")([x, side])
    x = act(layers.Conv2D(NECK, 3, padding="same", name="head_conv")(x), "head_conv_relu", None)
    outputs = {head: layers.Conv2D(channels, 1, activation="sigmoid" if head == "heat" else None, name=head,
                                   bias_initializer=keras.initializers.Constant(HEAT_PRIOR if head == "heat" else 0.0))(x)
               for head, channels in HEADS.items()}
    model = keras.Model(inputs, outputs, name=name or f"centerface_mobilenetv2_{alpha}")
    if weights == "imagenet":
        from maskmodel.training.builder import imagenet_file
        from maskmodel.training.imagenet import check_imagenet_weights

        check_imagenet_weights(alpha)
        model.load_weights(imagenet_file(alpha), skip_mismatch=True, by_name=True)
    elif weights is not None:
        model.load_weights(str(weights))
    return model


def _onnx_layers(model_path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """The published file's convolution, transposed-convolution and batch-norm nodes in graph order, with
    their weights."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    constants = {item.name: numpy_helper.to_array(item) for item in graph.initializer}
    return [(node.op_type, [constants[i] for i in node.input if i in constants]) for node in graph.node
            if node.op_type in ("Conv", "ConvTranspose", "BatchNormalization")]


def _keras_layers(model) -> list:
    """The Keras layers that hold the published file's nodes, in the same order: backbone convolutions (each
    with its batch norm), the neck's reduce, then per level the transposed convolution, its batch norm and the
    lateral convolution, the head convolution and the four heads."""
    import keras

    backbone = [layer for layer in model.layers
                if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
                and not layer.name.startswith(("neck_", "head_")) and layer.name not in HEADS]
    neck = [model.get_layer("neck_reduce")]
    for level in range(len(LATERAL_BLOCKS)):
        neck += [model.get_layer(f"neck_up{level}"), model.get_layer(f"neck_up{level}_BN"),
                 model.get_layer(f"neck_lateral{level}")]
    return backbone + neck + [model.get_layer("head_conv")] + [model.get_layer(head) for head in HEADS]


def port_centerface(onnx_path: str | os.PathLike, model=None) -> keras.Model:
    """The published CenterFace (`centerface_bnmerged.onnx`) as a Keras model (`build_centerface()` with its
    weights). Its merged batch norm becomes the offset of an identity batch norm after each convolution."""
    import keras

    model = model or build_centerface()
    nodes = _onnx_layers(Path(onnx_path))
    targets = _keras_layers(model)
    if len(nodes) != len(targets):
        raise ValueError(f"{onnx_path} has {len(nodes)} weighted nodes; CenterFace has {len(targets)}")
    for (op, arrays), layer in zip(nodes, targets):
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = arrays
            layer.set_weights([gamma, beta, mean, variance])
        elif isinstance(layer, keras.layers.Conv2DTranspose):  # ONNX (in, out, kh, kw) -> Keras (kh, kw, out, in)
            layer.set_weights([arrays[0].transpose(2, 3, 1, 0)])
        elif isinstance(layer, keras.layers.DepthwiseConv2D):  # ONNX (c, 1, kh, kw) -> Keras (kh, kw, c, 1)
            layer.set_weights([arrays[0].transpose(2, 3, 0, 1)])
            _set_merged_bias(model, layer, arrays[1])
        elif layer.use_bias:  # neck and heads: ONNX (out, in, kh, kw) -> Keras (kh, kw, in, out)
            layer.set_weights([arrays[0].transpose(2, 3, 1, 0), arrays[1]])
        else:
            layer.set_weights([arrays[0].transpose(2, 3, 1, 0)])
            _set_merged_bias(model, layer, arrays[1])
    return model


def _set_merged_bias(model, conv, bias: np.ndarray) -> None:
    """The batch norm after backbone convolution `conv` made an identity plus the merged `bias`."""
    bn_name = {"Conv1": "bn_Conv1"}.get(conv.name, f"{conv.name}_BN")
    ones = np.ones_like(bias)
    model.get_layer(bn_name).set_weights([ones, bias, np.zeros_like(bias), ones - BN_EPSILON])


# The 24-channel maps that enter the neck's sums: a student whose taps equal the teacher's gives its maps.
NECK_INPUTS = ("neck_reduce",) + tuple(f"neck_lateral{level}" for level in range(len(LATERAL_BLOCKS)))  # 1x1 convs
NECK_TAPS = tuple(f"{name}_relu" for name in NECK_INPUTS)


def neck_and_heads(model) -> list:
    """The layers after the neck's inputs, whose shapes do not depend on the backbone's width: each level's
    transposed convolution and batch norm, the head convolution and the four heads."""
    names = [f"neck_up{level}{suffix}" for level in range(len(LATERAL_BLOCKS)) for suffix in ("", "_BN")]
    return [model.get_layer(name) for name in names + ["head_conv", *HEADS]]


def copy_neck_and_heads(teacher, student) -> None:
    """Start a `student` (a narrower `build_centerface`) with the `teacher`'s neck and heads: only its backbone
    and the 1x1 convolutions that reduce the backbone's features to 24 channels remain to be learnt."""
    for source, target in zip(neck_and_heads(teacher), neck_and_heads(student)):
        target.set_weights(source.get_weights())


def fit_neck_inputs(teacher, student, batches: list[np.ndarray], ridge: float = 1e-2) -> None:
    """Set the `student`'s 1x1 convolutions into the neck (`neck_reduce`, `neck_lateral*`) to the least-squares
    fit of the `teacher`'s same convolutions' outputs from the student's backbone features on `batches` of
    pixels (NHWC 0..255): a student with the published neck and heads then starts close to the published maps,
    where random ones saturate the heat map."""
    import keras

    inputs = keras.Model(student.inputs, [student.get_layer(name).input for name in NECK_INPUTS])
    wanted = keras.Model(teacher.inputs, [teacher.get_layer(name).output for name in NECK_INPUTS])
    pairs = [(inputs(batch), wanted(batch)) for batch in batches]
    for index, name in enumerate(NECK_INPUTS):
        x = np.concatenate([np.reshape(p[0][index], (-1, p[0][index].shape[-1])) for p in pairs])
        y = np.concatenate([np.reshape(p[1][index], (-1, p[1][index].shape[-1])) for p in pairs])
        x = np.concatenate([x, np.ones((len(x), 1), x.dtype)], axis=1)  # the bias as a constant input
        solution = np.linalg.solve(x.T @ x + ridge * len(x) * np.eye(x.shape[1]), x.T @ y)
        student.get_layer(name).set_weights([solution[:-1][None, None].astype("float32"), solution[-1].astype("float32")])


def with_neck_taps(model) -> keras.Model:
    """`model` with a second output: the list of its `NECK_TAPS` maps (feature distillation)."""
    import keras

    return keras.Model(model.inputs, [model.output, [model.get_layer(name).output for name in NECK_TAPS]])


ONNX_INPUT = "input"
ONNX_OUTPUTS = tuple(HEADS)  # heat, scale, offset, landmarks: NCHW, as the published file's 537..540


def export_detector_onnx(model, path: str | os.PathLike) -> Path:
    """Write `model` as ONNX with the published file's contract: NCHW RGB 0..255 of any batch, height and
    width (multiples of 32), the four maps NCHW, named `heat`, `scale`, `offset`, `landmarks`."""
    import keras
    import onnx
    import tensorflow as tf

    from maskmodel.training.export import ONNX_OPSET

    inputs = keras.Input((3, None, None), name=ONNX_INPUT)
    maps = model(keras.layers.Permute((2, 3, 1), name="nchw_to_nhwc")(inputs))
    outputs = [keras.layers.Permute((3, 1, 2), name=f"{head}_nchw")(maps[head]) for head in ONNX_OUTPUTS]
    wrapper = keras.Model(inputs, outputs, name=f"{model.name}_nchw")
    signature = [tf.TensorSpec((None, 3, None, None), tf.float32, name=ONNX_INPUT)]
    path = Path(path)
    wrapper.export(str(path), format="onnx", input_signature=signature, opset_version=ONNX_OPSET, verbose=False)
    exported = onnx.load(str(path))  # ReLU6 stays Clip: ONNX Runtime and OpenVINO fuse it into the convolution
    for output, head in zip(exported.graph.output, ONNX_OUTPUTS):  # the outputs by their heads' names
        old = output.name
        for node in exported.graph.node:
            node.output[:] = [head if name == old else name for name in node.output]
        output.name = head
    onnx.save(exported, str(path))
    return path
