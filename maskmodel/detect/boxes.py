"""Box geometry shared by the detectors, evaluation and tracking: IoU, non-maximum suppression,
mirroring, weighted box fusion, the merge of several detection passes and face size. Boxes are `(N, 5)` float32
arrays of x1, y1, x2, y2, score (in pixels) unless said otherwise."""

from __future__ import annotations

import cv2
import numpy as np

NO_FACES = np.zeros((0, 5), dtype=np.float32)
NO_LANDMARKS = np.zeros((0, 10), dtype=np.float32)
MIN_DETECTION_SIDE = 10


def non_max_suppression(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Keep the best-scoring of overlapping `(N, 5)` boxes; result sorted by score."""
    if len(boxes) == 0:
        return NO_FACES
    return boxes[nms_indices(boxes, iou_threshold)].astype(np.float32)


def nms_indices(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """The indices of the `(N, 5)` boxes that `non_max_suppression` keeps, best score first (to keep
    other per-box arrays, such as landmarks, aligned)."""
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]]).tolist()
    keep = np.asarray(cv2.dnn.NMSBoxes(xywh, boxes[:, 4].tolist(), 0.0, iou_threshold), dtype=int).reshape(-1)
    return keep[np.argsort(-boxes[keep, 4], kind="stable")]


def mirror_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """`(N, 5)` boxes found in a left-right mirrored image, in the coordinates of the original."""
    mirrored = boxes.copy()
    mirrored[:, 0], mirrored[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return mirrored


def mirror_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """`(N, 10)` landmarks (x, y pairs) found in a mirrored image, in the coordinates of the original.

    Points keep their order (index 0 is still the point found as the right eye)."""
    mirrored = landmarks.copy()
    mirrored[:, 0::2] = width - landmarks[:, 0::2]
    return mirrored


def weighted_box_fusion(boxes: np.ndarray, iou_threshold: float, passes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fuse overlapping `(N, 5)` boxes of `passes` detection passes into one box each.

    Boxes are taken by descending score; each joins the first fused box it overlaps by more than
    `iou_threshold` (or starts one). A fused box is the score-weighted mean of its members, scored by
    their mean score times `min(members, passes) / passes`, so a face found by every pass outranks one
    found once.

    Returns:
        The fused `(M, 5)` boxes sorted by score, and for each input box the index of its fused box.

    Reference:
        Solovyev et al., "Weighted boxes fusion: Ensembling boxes from different object detection
        models", 2021.
    """
    order = np.argsort(-boxes[:, 4], kind="stable")
    sums, members, owner = [], [], np.empty(len(boxes), dtype=int)
    fused = np.zeros((0, 4), dtype=np.float64)
    for index in order:
        box = boxes[index]
        cluster = -1
        if len(fused):
            overlaps = box_iou(box[:4], fused)
            best = int(np.argmax(overlaps))
            cluster = best if overlaps[best] > iou_threshold else -1
        if cluster < 0:
            sums.append(np.zeros(5))
            members.append(0)
            fused = np.vstack([fused, box[:4]])
            cluster = len(members) - 1
        sums[cluster] += np.append(box[:4] * box[4], box[4])
        members[cluster] += 1
        fused[cluster] = sums[cluster][:4] / sums[cluster][4]
        owner[index] = cluster
    count = np.array(members, dtype=np.float64)
    scores = np.array([s[4] for s in sums]) / count * np.minimum(count, passes) / passes
    result = np.column_stack([fused, scores]).astype(np.float32) if members else NO_FACES
    return result, owner


def merge_passes(passes: list[tuple[np.ndarray, np.ndarray]], iou_threshold: float,
                 method: str = "wbf") -> tuple[np.ndarray, np.ndarray]:
    """Merge the `(boxes, landmarks)` of several detection passes by `"wbf"` or `"nms"`; result sorted by score."""
    boxes = np.concatenate([b for b, _ in passes]) if passes else NO_FACES
    landmarks = np.concatenate([m for _, m in passes]) if passes else NO_LANDMARKS
    if len(boxes) == 0:
        return NO_FACES, landmarks
    if len(passes) == 1 or method == "nms":
        keep = np.argsort(-boxes[:, 4], kind="stable") if len(passes) == 1 else nms_indices(boxes, iou_threshold)
        return boxes[keep], landmarks[keep]
    fused, owner = weighted_box_fusion(boxes, iou_threshold, len(passes))
    weights = np.zeros((len(fused), 1))
    points = np.zeros((len(fused), 10))
    np.add.at(weights, owner, boxes[:, 4:5])
    np.add.at(points, owner, landmarks * boxes[:, 4:5])
    order = np.argsort(-fused[:, 4], kind="stable")
    return fused[order], (points / np.maximum(weights, 1e-9))[order].astype(np.float32)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one `(4,)` box with each of `(N, 4)` boxes (x1, y1, x2, y2)."""
    if len(boxes) == 0:
        return np.zeros(0)
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def face_size(box: tuple[float, float, float, float]) -> float:
    """Face size in pixels: the longer side of its box."""
    return max(box[2] - box[0], box[3] - box[1])
