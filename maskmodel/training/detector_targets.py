"""CenterNet's training targets and loss for CenterFace's stride-4 maps.

A face box becomes: a Gaussian peak on the heat map at its centre cell (radius from the box size, as in
CenterNet), its log size `log(h / 4), log(w / 4)` and the centre's offset within the cell at that cell
(the decoder's `c = (cell + offset + 0.5) * 4`). Pixels under an "ignore" box (a face the original detector
finds that no label covers, or a face too small to learn from) carry no heat loss.

Reference:
    Zhou et al., "Objects as Points", 2019 (CenterNet); Law and Deng, "CornerNet", 2018 (the focal loss).
"""

from __future__ import annotations

import numpy as np

from maskmodel.training.detector_model import STRIDE

MAX_FACES = 256  # faces with size and offset targets per training image (the most crowded ILC photo has ~100)
MIN_FACE = 6.0  # a face shorter than this (in input pixels) is ignored, not taught


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: the largest shift of a box's corner that keeps IoU >= `min_overlap` (the smallest
    root of its three cases)."""
    a1, b1 = 1, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (height + width), (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


def _draw_gaussian(heat: np.ndarray, cy: int, cx: int, radius: int, height: float = 1.0) -> None:
    sigma = (2 * radius + 1) / 6
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    peak = height * np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    height, width = heat.shape
    top, bottom = min(cy, radius), min(height - cy, radius + 1)
    left, right = min(cx, radius), min(width - cx, radius + 1)
    region = heat[cy - top:cy + bottom, cx - left:cx + right]
    np.maximum(region, peak[radius - top:radius + bottom, radius - left:radius + right], out=region)


def make_targets(boxes: np.ndarray, ignore: np.ndarray, height: int, width: int,
                 soft: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The targets of one `height` x `width` input (multiples of 4) with face `boxes` and `ignore` boxes
    (`(N, 4)` x1, y1, x2, y2 in input pixels), and `soft` boxes (`(N, 5)`, box and score): a Gaussian of that
    height, below 1, so a soft negative for the focal loss.

    Returns:
        `heat` (h, w, 1) Gaussian peaks, `heat_weight` (h, w, 1) 0 under ignored boxes else 1,
        `index` (MAX_FACES,) flat cell of each face, `size` and `offset` (MAX_FACES, 2) (y, x) targets and
        `face_weight` (MAX_FACES,) 1 for the faces taught, at stride 4 (h = height / 4).
    """
    h, w = height // STRIDE, width // STRIDE
    heat = np.zeros((h, w), np.float32)
    weight = np.ones((h, w), np.float32)
    index = np.zeros(MAX_FACES, np.int32)
    size = np.zeros((MAX_FACES, 2), np.float32)
    offset = np.zeros((MAX_FACES, 2), np.float32)
    face_weight = np.zeros(MAX_FACES, np.float32)
    small = [b for b in boxes if min(b[2] - b[0], b[3] - b[1]) < MIN_FACE]
    taught = [b for b in boxes if min(b[2] - b[0], b[3] - b[1]) >= MIN_FACE]
    for x1, y1, x2, y2 in [*ignore, *small]:
        weight[max(0, int(y1 // STRIDE)):int(np.ceil(y2 / STRIDE)), max(0, int(x1 // STRIDE)):int(np.ceil(x2 / STRIDE))] = 0

    def centre(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float, int, int]:
        """Height and width in cells, the centre in cells and its cell (the decoder's `(cell + offset + 0.5) * 4`)."""
        bh, bw = (y2 - y1) / STRIDE, (x2 - x1) / STRIDE
        cy, cx = (y1 + y2) / 2 / STRIDE - 0.5, (x1 + x2) / 2 / STRIDE - 0.5
        return bh, bw, cy, cx, int(np.clip(round(cy), 0, h - 1)), int(np.clip(round(cx), 0, w - 1))

    for *box, score in (() if soft is None else soft):
        bh, bw, _, _, iy, ix = centre(*box)
        _draw_gaussian(heat, iy, ix, max(0, int(gaussian_radius(bh, bw))), min(float(score), 0.99))
    for number, box in enumerate(taught[:MAX_FACES]):
        bh, bw, cy, cx, iy, ix = centre(*box)
        _draw_gaussian(heat, iy, ix, max(0, int(gaussian_radius(bh, bw))))
        weight[iy, ix] = 1.0  # a labelled face inside an ignored one is still taught
        index[number], face_weight[number] = iy * w + ix, 1.0
        size[number] = np.log(bh), np.log(bw)
        offset[number] = cy - iy, cx - ix
    return {"heat": heat[..., None], "heat_weight": weight[..., None], "index": index, "size": size,
            "offset": offset, "face_weight": face_weight}


def centernet_loss(outputs: dict, targets: dict, size_weight: float = 1.0, offset_weight: float = 1.0) -> dict:
    """CenterNet's loss of a batch: penalty-reduced focal loss on the heat map (alpha 2, beta 4, only where
    `heat_weight` is 1), L1 on log size and offset at the faces' cells; each normalised by the faces.

    Returns:
        `loss` (the total) and its parts `heat`, `size`, `offset` (scalar tensors).
    """
    import tensorflow as tf

    heat = tf.clip_by_value(outputs["heat"], 1e-4, 1 - 1e-4)
    target, weight = targets["heat"], targets["heat_weight"]
    positive = tf.cast(target >= 1.0, tf.float32)
    positive_loss = -tf.math.log(heat) * (1 - heat) ** 2 * positive
    negative_loss = -tf.math.log(1 - heat) * heat ** 2 * (1 - target) ** 4 * (1 - positive)
    faces = tf.maximum(tf.reduce_sum(targets["face_weight"]), 1.0)
    heat_loss = tf.reduce_sum((positive_loss + negative_loss) * weight) / faces

    def at_faces(name: str) -> tf.Tensor:
        maps = outputs[name]
        flat = tf.reshape(maps, (tf.shape(maps)[0], -1, maps.shape[-1]))
        return tf.gather(flat, targets["index"], batch_dims=1)

    mask = targets["face_weight"][..., None]
    size_loss = tf.reduce_sum(tf.abs(at_faces("scale") - targets["size"]) * mask) / faces
    offset_loss = tf.reduce_sum(tf.abs(at_faces("offset") - targets["offset"]) * mask) / faces
    return {"loss": heat_loss + size_weight * size_loss + offset_weight * offset_loss,
            "heat": heat_loss, "size": size_loss, "offset": offset_loss}


def distillation_loss(outputs: dict, teacher: dict) -> dict:
    """Dense distillation from a teacher's maps (`teacher_heat`, `teacher_scale`, `teacher_offset`,
    `teacher_landmarks`, NHWC): the focal loss with the teacher's heat as a soft target, and L1 on the other
    maps weighted by the teacher's heat (where it sees a face); each normalised by the teacher's heat mass.

    Returns:
        `distill` (the total) and its parts `distill_heat`, `distill_box`.
    """
    import tensorflow as tf

    target = teacher["teacher_heat"]
    heat = tf.clip_by_value(outputs["heat"], 1e-4, 1 - 1e-4)
    mass = tf.maximum(tf.reduce_sum(target), 1.0)
    heat_loss = -tf.reduce_sum(target * (1 - heat) ** 2 * tf.math.log(heat)
                               + (1 - target) * heat ** 2 * tf.math.log(1 - heat)) / mass
    box_loss = sum(tf.reduce_sum(target * tf.abs(outputs[name] - teacher[f"teacher_{name}"])) / mass
                   for name in ("scale", "offset", "landmarks"))
    return {"distill": heat_loss + box_loss, "distill_heat": heat_loss, "distill_box": box_loss}


def feature_loss(student_taps: list, teacher_taps: list) -> dict:
    """Feature distillation: each student map's squared error to the teacher's, relative to the teacher map's
    mean square (scale-free, so every level counts alike), summed over the maps.

    Returns:
        `features` (a scalar tensor).
    """
    import tensorflow as tf

    total = 0.0
    for student, teacher in zip(student_taps, teacher_taps):
        total += tf.reduce_mean(tf.square(student - teacher)) / (tf.reduce_mean(tf.square(teacher)) + 1e-6)
    return {"features": total}
