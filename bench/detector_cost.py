"""What a face detector's network costs: multiply-adds and milliseconds of one pass, at each input size.

    python -m bench.detector_cost ONNX_OR_RUN [...] [--sizes 384,512,640,800] [--rounds 20]
                                  [--out bench/results/detector_cost.json]

Multiply-adds are counted from the ONNX graph (convolutions and transposed convolutions: output pixels x
output channels x input channels per group x kernel area) for a 4:3 landscape photo whose longer side is the
size, as CenterFace's detector sizes it (both sides rounded up to multiples of 32). Milliseconds: one forward
pass on the runtime `--backend auto` picks here, the networks taking turns pass by pass after a warm-up, the
median of `--rounds`; the ratio is to the first network given (measured in the same run).
Prints a Markdown table, writes the JSON.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np

from bench import common
from bench.frontier import _cpu_name
from maskmodel.detect.centerface import prepared_centerface
from maskmodel.runtime.backends import open_network


def model_file(path: str) -> Path:
    """The ONNX file of a path: the file, or a `train-detector` run folder's `model.onnx`."""
    return Path(path) / "model.onnx" if Path(path).is_dir() else Path(path)


def input_shape(size: int) -> tuple[int, int]:
    """(height, width) of a 4:3 landscape photo whose longer side is `size`, in multiples of 32."""
    return math.ceil(size * 3 / 4 / 32) * 32, math.ceil(size / 32) * 32


def multiply_adds(path: Path, height: int, width: int) -> int:
    """Multiply-adds of the graph's convolutions for an input of `height` x `width`."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], (height, width)):
        dim.dim_value = value
    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]}
    weights = {item.name: list(item.dims) for item in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        kernel = weights[node.input[1]]
        out = shapes[node.output[0]]
        if node.op_type == "Conv":  # (out, in / groups, kh, kw)
            total += out[2] * out[3] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
        else:  # (in, out / groups, kh, kw): every input pixel spreads over the kernel
            source = shapes[node.input[0]]
            total += source[2] * source[3] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--sizes", default="384,512,640,800")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results/detector_cost.json"))
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    networks = {}
    for name in args.models:
        data, outputs = prepared_centerface(model_file(name).read_bytes(), name)
        networks[name] = open_network(data, "auto", "auto", outputs)
    results = {name: {} for name in args.models}
    rng = np.random.default_rng(0)
    for size in sizes:
        height, width = input_shape(size)
        blob = rng.uniform(0, 255, (1, 3, height, width)).astype(np.float32)
        times = {name: [] for name in args.models}
        for name, network in networks.items():
            network.run(blob)  # warm-up (shape-specific compilation)
        for _ in range(args.rounds):
            for name, network in networks.items():
                started = time.perf_counter()
                network.run(blob)
                times[name].append(1000 * (time.perf_counter() - started))
        for name in args.models:
            results[name][str(size)] = {"input": [height, width], "gmac": multiply_adds(model_file(name), height, width) / 1e9,
                                        "ms": statistics.median(times[name]), "backend": networks[name].backend}
    first = args.models[0]
    lines = ["| network | input (h x w) | GMAC | ratio | ms (median) | ratio | backend |", "|---|---|---|---|---|---|---|"]
    for size in sizes:
        for name in args.models:
            row, base = results[name][str(size)], results[first][str(size)]
            lines.append(f"| {name} | {row['input'][0]} x {row['input'][1]} | {row['gmac']:.2f} | "
                         f"{row['gmac'] / base['gmac']:.2f}x | {row['ms']:.1f} | {row['ms'] / base['ms']:.2f}x | "
                         f"{row['backend']} |")
    common.publish("\n".join(lines), {"cpu": _cpu_name(), "sizes": sizes, "rounds": args.rounds, "results": results},
                   args.out)


if __name__ == "__main__":
    main()
