"""CenterFace: an anchor-free face detector with a stride-4 heat map, strong on small faces.

The upstream ONNX file (Star-Clouds/CenterFace, MIT) declares a fixed 10x3x32x32 input;
`dynamic_onnx` rewrites its graph inputs and outputs to `[N, C, H, W]` in memory at load time (a
few lines of protobuf, no `onnx` package needed), so the downloaded and hash-checked file stays the
upstream one. Contract: RGB float32 0..255, no normalisation, zero-padded bottom/right to multiples
of 32; four stride-4 maps: heat (already a sigmoid), log-scale (h, w), offset (y, x) and 5 landmarks.

Reference:
    Xu et al., "CenterFace: Joint Face Detection and Alignment Using Face as Point", 2019.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from maskmodel.classify.crops import resize_image
from maskmodel.detect.boxes import (MIN_DETECTION_SIDE, NO_FACES, NO_LANDMARKS, merge_passes, mirror_boxes,
                                    mirror_landmarks)
from maskmodel.runtime.backends import open_network
from maskmodel.runtime.onnxproto import GRAPH, OUTPUT, fields, message, name_of, with_nested

STRIDE, PAD = 4, 32
OUTPUTS = ("537", "538", "539", "540")  # heat, scale, offset, landmarks
TRAINED_OUTPUTS = ("heat", "scale", "offset", "landmarks")  # a model of `maskmodel train-detector`


def graph_outputs(model: bytes) -> tuple[str, ...]:
    """The output names of an ONNX model's graph."""
    graph = next((value for field, value, _ in fields(model) if field == GRAPH and value is not None), b"")
    return tuple(name_of(value) for field, value, _ in fields(graph) if field == OUTPUT and value is not None)


def prepared_centerface(model: bytes, label: str) -> tuple[bytes, tuple[str, ...]]:
    """A CenterFace ONNX model ready to run, and its four outputs in order: the published file made dynamic,
    or a `maskmodel train-detector` export as it is. Raises `ValueError` for any other model."""
    names = graph_outputs(model)
    if names == OUTPUTS:
        return dynamic_onnx(model), OUTPUTS
    if names == TRAINED_OUTPUTS:
        return model, TRAINED_OUTPUTS
    raise ValueError(f"{label} is not a CenterFace model: its outputs are {list(names)[:8]}, expected "
                     f"{list(OUTPUTS)} (the published file) or {list(TRAINED_OUTPUTS)} (maskmodel train-detector)")


def _dynamic_shape(shape: bytes) -> bytes:
    """A TensorShapeProto with dimensions 0, 2 and 3 made symbolic (N, H, W); the channels kept."""
    dims = [payload for field, payload, _ in fields(shape) if field == 1]
    names = {0: b"N", 2: b"H", 3: b"W"}
    return b"".join(message(1, message(2, names[i]) if i in names else dim) for i, dim in enumerate(dims))


def dynamic_onnx(model: bytes, image_input: str = "input.1", outputs: tuple[str, ...] = OUTPUTS) -> bytes:
    """The ONNX `model` with `image_input` and `outputs` given shape `[N, C, H, W]`.

    The other graph inputs of the upstream file are its weights (initializers listed as inputs, as
    old exporters did); they are dropped from the inputs so ONNX Runtime may fold them as constants.
    Path: ModelProto.graph (7) → GraphProto.input (11) / output (12) → ValueInfoProto.type (2) →
    TypeProto.tensor_type (1) → shape (2).
    """

    def graph(payload: bytes) -> bytes:
        out = []
        for field, value, raw in fields(payload):
            if field in (11, 12) and value is not None:
                if field == 11 and name_of(value) != image_input:
                    continue
                if name_of(value) in (image_input, *outputs):
                    raw = message(field, with_nested(value, (2, 1, 2), _dynamic_shape))
            out.append(raw)
        return b"".join(out)

    return with_nested(model, (7,), graph)


def smallest_face(boxes: np.ndarray, factor: float) -> float:
    """The longer side of the smallest of `boxes` (x1, y1, x2, y2, ...) times `factor` (the pixels of the pass
    that found them); `0` when there is none (a photo where nothing was found deserves a closer look)."""
    if not len(boxes):
        return 0.0
    return float(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).min() * factor)


class CenterFaceDetector:
    """CenterFace, run at one or more image sizes, optionally also on the mirrored image.

    Args:
        model_path: the upstream `centerface_bnmerged.onnx` (made dynamic in memory), or the `model.onnx` of
            a `maskmodel train-detector` run.
        scales: longer image side, in pixels, of each detection pass (`None`: native size).
            Defaults to `(800,)`.
        score_threshold: minimum face score (CenterFace scores run lower than YuNet's). With several
            passes it applies to the merged score; each pass keeps candidates from half of it, so a face
            found weakly by one pass still adds to the fusion. Defaults to `0.3`.
        nms_threshold: IoU of the greedy NMS within one pass and of the merge across passes.
            Defaults to `0.3`.
        flip: also detect in the mirrored image at each scale (batched with the plain pass). Defaults to
            `False`.
        merge: how passes are merged: `"wbf"` (weighted box fusion) or `"nms"`. Defaults to `"wbf"`.
        backend: `"opencv"` (`cv2.dnn`), `"onnxruntime"`, `"openvino"` or `"auto"` (the fastest installed,
            see `maskmodel.runtime.backends`: OpenVINO bf16 where the CPU has it). Defaults to `"auto"`.
        precision: `"auto"`, `"fp32"` or `"bf16"` (see `maskmodel.runtime.backends`). Defaults to `"auto"`.
        name: the detector's name in reports (`"centerface"`, or `"centerface-int8"` for the int8 file).
            Defaults to `"centerface"`.
        first_pass: longer image side of a cheap first pass (mirrored too with `flip`); the passes of `scales` then run
            only where it found no face or a face smaller than `refine_below` (in its own pixels), and their
            result replaces it. `0`: no first pass. Defaults to `384`.
        refine_below: the first pass's smallest face, in its pixels, below which the photo gets the passes
            of `scales`. Defaults to `24`.
    """

    # Named settings (`DetectorConfig.preset`), measured in docs/benchmarks.md (`python -m bench.frontier`). The
    # default is a first pass at 384 px, and the 800 px pass only on photos where it found a face under 24 px of
    # its own or none: fitted on crowd-dev and ILC train (`python -m bench.cascade`), it keeps the mAP50 of 800 px
    # alone on both (0.801 / 0.793 vs 0.801 / 0.787) and on ILC val (0.754 vs 0.758) at 0.52-0.71x its detection cost.
    PRESETS = {"fast": {"scales": (384,), "first_pass": 0}, "speed": {"scales": (512,), "first_pass": 0},
               "accuracy": {"scales": (1024,), "flip": True, "score_threshold": 0.2, "first_pass": 0}}
    REQUIRES = ()  # an ONNX file: OpenCV's ONNX importer, or ONNX Runtime

    def __init__(
        self,
        model_path: str | os.PathLike,
        scales: tuple[int | None, ...] = (800,),
        score_threshold: float = 0.3,
        nms_threshold: float = 0.3,
        flip: bool = False,
        merge: str = "wbf",
        backend: str = "auto",
        name: str = "centerface",
        precision: str = "auto",
        first_pass: int = 384,
        refine_below: float = 24.0,
    ) -> None:
        if merge not in ("wbf", "nms"):
            raise ValueError(f"Expected merge in ('wbf', 'nms'). Received: merge={merge!r}")
        self.scales, self.score_threshold, self.nms_threshold = scales, score_threshold, nms_threshold
        self._pass_threshold = score_threshold / 2 if len(scales) > 1 or flip else score_threshold
        self.flip, self.merge, self.name = flip, merge, name
        self.first_pass, self.refine_below = first_pass, refine_below
        model, outputs = prepared_centerface(Path(model_path).read_bytes(), str(model_path))
        self._network = open_network(model, backend, precision, outputs)
        self.backend, self.precision = self._network.backend, self._network.precision

    def detect(self, image: np.ndarray) -> np.ndarray:
        """`(N, 5)` boxes `x1, y1, x2, y2, score` of a BGR image, sorted by score."""
        return self.detect_with_landmarks(image)[0]

    def detect_with_landmarks(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes as `detect`, and `(N, 10)` landmarks: (x, y) of right eye, left eye, nose tip, right and
        left mouth corner."""
        if self.first_pass:
            first = self._passes(image, (self.first_pass,))
            if smallest_face(first[0], self.first_pass / max(image.shape[:2])) >= self.refine_below:
                return first
        return self._passes(image, self.scales)

    def _passes(self, image: np.ndarray, scales: tuple[int | None, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and landmarks of the passes at `scales` (each also mirrored with `flip`), merged, at the
        score threshold."""
        passes = [p for scale in scales for p in self._detect_at(image, scale)]
        boxes, landmarks = merge_passes(passes, self.nms_threshold, self.merge)
        keep = boxes[:, 4] >= self.score_threshold
        return boxes[keep], landmarks[keep]

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """The four raw maps (heat, scale, offset, landmarks) of an NCHW RGB float32 blob."""
        return self._network.run(blob)

    def _detect_at(self, image: np.ndarray, longer_side: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
        height, width = image.shape[:2]
        factor = 1.0 if longer_side is None else longer_side / max(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        if min(size) < MIN_DETECTION_SIDE:  # a sliver of an image holds no detectable face
            return [(NO_FACES, NO_LANDMARKS)]
        scaled = image if size == (width, height) else resize_image(image, size)
        batch = [scaled, scaled[:, ::-1]] if self.flip else [scaled]
        blob = np.zeros((len(batch), 3, -(-size[1] // PAD) * PAD, -(-size[0] // PAD) * PAD), np.float32)
        for index, pixels in enumerate(batch):  # RGB, NCHW, zero-padded bottom/right
            blob[index, :, :size[1], :size[0]] = pixels[..., ::-1].transpose(2, 0, 1)
        maps = self.forward(blob)
        found = []
        for index in range(len(batch)):
            boxes, landmarks = self._decode([m[index] for m in maps], factor, width, height)
            if index == 1:
                boxes, landmarks = mirror_boxes(boxes, width), mirror_landmarks(landmarks, width)
            found.append((boxes, landmarks))
        return found

    def _decode(self, maps: list[np.ndarray], factor: float, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        heat, scale, offset, marks = maps
        ys, xs = np.nonzero(heat[0] > self._pass_threshold)
        if len(ys) == 0:
            return NO_FACES.copy(), NO_LANDMARKS.copy()
        h, w = np.exp(scale[0, ys, xs]) * STRIDE, np.exp(scale[1, ys, xs]) * STRIDE
        cy, cx = (ys + offset[0, ys, xs] + 0.5) * STRIDE, (xs + offset[1, ys, xs] + 0.5) * STRIDE
        x1, y1 = cx - w / 2, cy - h / 2
        boxes = np.column_stack([x1, y1, x1 + w, y1 + h, heat[0, ys, xs]]).astype(np.float32)
        landmarks = np.empty((len(ys), 10), np.float32)
        landmarks[:, 0::2] = marks[1::2, ys, xs].T * w[:, None] + x1[:, None]
        landmarks[:, 1::2] = marks[0::2, ys, xs].T * h[:, None] + y1[:, None]
        keep = cv2.dnn.NMSBoxes(np.column_stack([x1, y1, w, h]).tolist(), boxes[:, 4].tolist(), 0.0,
                                self.nms_threshold)
        keep = np.asarray(keep, dtype=int).reshape(-1)
        boxes, landmarks = boxes[keep], landmarks[keep] / factor
        boxes[:, :4] /= factor
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return boxes, landmarks
