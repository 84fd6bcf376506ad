"""Convert OpenCV's ResNet-10 SSD face detector (TensorFlow `.pb` + `.pbtxt`) to one ONNX file.

OpenCV 5.1 has no TensorFlow importer, so the seed design's SSD ships as ONNX, which OpenCV 4.x and 5.x
and ONNX Runtime all read. The `.pb` holds the network with 8-bit weights (TensorFlow `Dequantize`
nodes); the `.pbtxt` adds what only OpenCV understood: `PriorBox` and `DetectionOutput`. This script

1. dequantizes the weights (TensorFlow's own `Dequantize`; a tensor stored with min == max, which
   TensorFlow turns into NaN, is its constant min: zero for every such tensor in this file),
2. converts the network with tf2onnx (opset `OPSET`), NCHW input `data` of 1x3x300x300,
3. appends the SSD box decoding (CENTER_SIZE, the priors of the `.pbtxt`'s `PriorBox` nodes as a constant)
   so that the file outputs `boxes` (1xNx4: x1, y1, x2, y2 relative to the image) and `scores` (1xN: face
   probability); non-maximum suppression (IoU `NMS_IOU`, as the `.pbtxt`'s `DetectionOutput`) is left to
   the caller,
4. stores the 8-bit weights as 8-bit codes again (lossless: `Cast`, `Mul`, `Add` back to float32 in the
   graph), a quarter of the float32 file.

Run (needs the `[train]` extra):

    python -m maskmodel.training.ssd_onnx ../shared/models/face/opencv_face_detector_uint8.pb \
        ../shared/models/face/opencv_face_detector.pbtxt weights/opencv-ssd-1.0.0.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OPSET = 13
INPUT_SIZE = 300
NMS_IOU = 0.45


def dequantized_graph(pb_path: Path):
    """The `.pb` GraphDef with every `Dequantize` replaced by a float32 constant and a 1x300x300x3 input."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(pb_path).read_bytes())
    dequantize = [node for node in graph_def.node if node.op == "Dequantize"]
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run([f"{node.name}:0" for node in dequantize])
    minimum = {node.name: _const_value(graph_def, node.input[1]) for node in dequantize}
    floats = {node.name: np.nan_to_num(value, nan=float(minimum[node.name])).astype(np.float32)
              for node, value in zip(dequantize, values)}
    converted = tf.compat.v1.GraphDef()
    for node in graph_def.node:
        if node.name in floats:
            const = converted.node.add(name=node.name, op="Const")
            const.attr["dtype"].type = tf.float32.as_datatype_enum
            const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(floats[node.name]))
        else:
            converted.node.add().CopyFrom(node)
            if node.op == "Placeholder":
                converted.node[-1].attr["shape"].shape.CopyFrom(
                    tf.TensorShape([1, INPUT_SIZE, INPUT_SIZE, 3]).as_proto())
    return converted


def _const_value(graph_def, name: str) -> np.ndarray:
    from tensorflow.python.framework import tensor_util

    node = next(node for node in graph_def.node if node.name == name)
    return tensor_util.MakeNdarray(node.attr["value"].tensor)


def prior_boxes(graph_def, pbtxt_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The SSD priors of the `.pbtxt`'s `PriorBox` nodes for a 300x300 input, in `mbox_priorbox` order:
    `(N, 4)` centre x, centre y, width, height (relative), and the four variances."""
    import tensorflow as tf
    from google.protobuf import text_format

    text_graph = text_format.Parse(Path(pbtxt_path).read_text(), tf.compat.v1.GraphDef())
    prior_nodes = [node for node in text_graph.node if node.op == "PriorBox"]
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        maps = session.run([f"{node.input[0]}:0" for node in prior_nodes],
                           {"data:0": np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)})
    priors, variance = [], None
    for node, feature_map in zip(prior_nodes, maps):
        attr = node.attr
        min_size, max_size = attr["min_size"].i, attr["max_size"].i
        step, offset = attr["step"].f, attr["offset"].f
        ratios = [r for ratio in attr["aspect_ratio"].tensor.float_val
                  for r in ((ratio, 1 / ratio) if attr["flip"].b else (ratio,))]
        sizes = [(min_size, min_size), (np.sqrt(min_size * max_size),) * 2]
        sizes += [(min_size * np.sqrt(r), min_size / np.sqrt(r)) for r in ratios]
        variance = np.array(attr["variance"].tensor.float_val, np.float32)
        height, width = feature_map.shape[1:3]
        for y in range(height):
            for x in range(width):
                centre = ((x + offset) * step, (y + offset) * step)
                priors += [(centre[0], centre[1], w, h) for w, h in sizes]
    return np.array(priors, np.float32) / INPUT_SIZE, variance


def add_decoding(model, priors: np.ndarray, variance: np.ndarray):
    """Append the CENTER_SIZE decoding: outputs `boxes` (1xNx4, x1 y1 x2 y2) and `scores` (1xN)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    loc, conf = (output.name for output in graph.output)
    count = len(priors)
    constants = {
        "ssd_loc_shape": np.array([1, count, 4], np.int64), "ssd_conf_shape": np.array([1, count, 2], np.int64),
        "ssd_centre_scale": priors[:, 2:] * variance[:2], "ssd_prior_centre": priors[:, :2],
        "ssd_size_variance": variance[2:], "ssd_prior_size": priors[:, 2:], "ssd_half": np.array(0.5, np.float32),
        "ssd_starts": np.array([0], np.int64), "ssd_middles": np.array([2], np.int64),
        "ssd_ends": np.array([4], np.int64), "ssd_axis": np.array([2], np.int64),
        "ssd_face": np.array([1], np.int64),
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    node = helper.make_node
    graph.node.extend([
        node("Reshape", [loc, "ssd_loc_shape"], ["ssd_loc"]),
        node("Slice", ["ssd_loc", "ssd_starts", "ssd_middles", "ssd_axis"], ["ssd_loc_centre"]),
        node("Slice", ["ssd_loc", "ssd_middles", "ssd_ends", "ssd_axis"], ["ssd_loc_size"]),
        node("Mul", ["ssd_loc_centre", "ssd_centre_scale"], ["ssd_shift"]),
        node("Add", ["ssd_shift", "ssd_prior_centre"], ["ssd_centre"]),
        node("Mul", ["ssd_loc_size", "ssd_size_variance"], ["ssd_log_scale"]),
        node("Exp", ["ssd_log_scale"], ["ssd_scale"]),
        node("Mul", ["ssd_scale", "ssd_prior_size"], ["ssd_size"]),
        node("Mul", ["ssd_size", "ssd_half"], ["ssd_half_size"]),
        node("Sub", ["ssd_centre", "ssd_half_size"], ["ssd_top_left"]),
        node("Add", ["ssd_centre", "ssd_half_size"], ["ssd_bottom_right"]),
        node("Concat", ["ssd_top_left", "ssd_bottom_right"], ["boxes"], axis=2),
        node("Reshape", [conf, "ssd_conf_shape"], ["ssd_conf"]),
        node("Gather", ["ssd_conf", "ssd_face"], ["ssd_face_score"], axis=2),
        node("Reshape", ["ssd_face_score", "ssd_loc_shape_scores"], ["scores"]),
    ])
    graph.initializer.append(numpy_helper.from_array(np.array([1, count], np.int64), "ssd_loc_shape_scores"))
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info("boxes", 1, [1, count, 4]),
                         helper.make_tensor_value_info("scores", 1, [1, count])])
    return model


def int8_weights(model, min_size: int = 1024):
    """Store each float32 initializer of at least `min_size` values that lies on a grid of 256 levels (the
    `.pb`'s 8-bit weights) as int8 codes with `Cast`, `Mul` (step) and `Add` (offset) back to float32:
    lossless, a quarter of the size. Other initializers (a convolution with a batch norm folded in, the
    priors) stay float32. int8, not uint8: OpenCV 4.x's importer reads a uint8 tensor shifted by -128."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    dequantize = []
    for index, tensor in enumerate(list(graph.initializer)):
        value = numpy_helper.to_array(tensor)
        if value.dtype != np.float32 or value.size < min_size:
            continue
        low, step = float(value.min()), float(value.max() - value.min()) / 255
        codes = np.round((value - low) / step) if step else np.zeros_like(value)
        if np.abs(low + codes * step - value).max() > 1e-5 * step * 255:
            continue
        name = tensor.name
        graph.initializer[index].CopyFrom(numpy_helper.from_array((codes - 128).astype(np.int8), f"{name}_i8"))
        graph.initializer.extend([numpy_helper.from_array(np.array(step, np.float32), f"{name}_step"),
                                  numpy_helper.from_array(np.array(low + 128 * step, np.float32), f"{name}_offset")])
        dequantize += [helper.make_node("Cast", [f"{name}_i8"], [f"{name}_codes"], to=TensorProto.FLOAT),
                       helper.make_node("Mul", [f"{name}_codes", f"{name}_step"], [f"{name}_scaled"]),
                       helper.make_node("Add", [f"{name}_scaled", f"{name}_offset"], [name])]
    nodes = dequantize + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def convert(pb_path: Path, pbtxt_path: Path, out_path: Path, compact: bool = True) -> Path:
    """Write the ONNX SSD (see the module docstring) to `out_path`."""
    import onnx
    import tf2onnx

    graph_def = dequantized_graph(pb_path)
    model, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=["data:0"],
                                              output_names=["mbox_loc:0", "mbox_conf_flatten:0"],
                                              opset=OPSET, inputs_as_nchw=["data:0"])
    model.graph.input[0].name = "data"
    for node in model.graph.node:
        node.input[:] = ["data" if name == "data:0" else name for name in node.input]
    model = add_decoding(model, *prior_boxes(graph_def, pbtxt_path))
    if compact:
        model = int8_weights(model)
    model.producer_name = "maskmodel.training.ssd_onnx"
    onnx.checker.check_model(model)
    out_path = Path(out_path)
    onnx.save(model, str(out_path))
    return out_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pb", type=Path)
    parser.add_argument("pbtxt", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--float32", action="store_true", help="store every weight as float32 (4x the size)")
    args = parser.parse_args()
    print(convert(args.pb, args.pbtxt, args.out, compact=not args.float32))


if __name__ == "__main__":
    main()
