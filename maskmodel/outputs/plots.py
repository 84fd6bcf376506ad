"""Evaluation figures drawn with OpenCV only (no matplotlib needed at inference time)."""

from __future__ import annotations

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
PALETTE = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148)]  # BGR


def curve_plot(curves: dict[str, tuple[list[float], list[float]]], title: str, x_label: str, y_label: str,
               size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Line plot on the unit square: `curves` maps a legend entry to (x values, y values)."""
    width, height = size
    left, right, top, bottom = 70, 20, 40, 60
    image = np.full((height, width, 3), 255, np.uint8)
    plot_w, plot_h = width - left - right, height - top - bottom

    def point(x: float, y: float) -> tuple[int, int]:
        return int(left + x * plot_w), int(top + (1 - y) * plot_h)

    for tick in np.linspace(0, 1, 6):
        cv2.line(image, point(tick, 0), point(tick, 1), (230, 230, 230), 1)
        cv2.line(image, point(0, tick), point(1, tick), (230, 230, 230), 1)
        cv2.putText(image, f"{tick:.1f}", (point(tick, 0)[0] - 12, height - bottom + 20), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, f"{tick:.1f}", (left - 35, point(0, tick)[1] + 4), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(image, point(0, 1), point(1, 0), (0, 0, 0), 1)
    for index, (name, (xs, ys)) in enumerate(curves.items()):
        colour = PALETTE[index % len(PALETTE)]
        if len(xs):
            points = np.array([point(x, y) for x, y in zip(xs, ys)], np.int32)
            cv2.polylines(image, [points], False, colour, 2, cv2.LINE_AA)
        cv2.putText(image, name, (left + 10, top + 20 + 20 * index), FONT, 0.5, colour, 1, cv2.LINE_AA)
    cv2.putText(image, title, (left, 25), FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, x_label, (left + plot_w // 2 - 30, height - 15), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, y_label, (5, top - 10), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def confusion_image(matrix: np.ndarray, classes: list[str], title: str, cell: int = 110) -> np.ndarray:
    """Confusion matrix (rows: true class, columns: predicted) with counts, shaded by row share."""
    n = len(classes)
    margin_left, margin_top = 130, 70
    image = np.full((margin_top + n * cell + 30, margin_left + n * cell + 20, 3), 255, np.uint8)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for row in range(n):
        for column in range(n):
            x, y = margin_left + column * cell, margin_top + row * cell
            shade = int(255 - 200 * shares[row, column])
            cv2.rectangle(image, (x, y), (x + cell, y + cell), (255, shade, shade), cv2.FILLED)
            cv2.rectangle(image, (x, y), (x + cell, y + cell), (0, 0, 0), 1)
            colour = (255, 255, 255) if shade < 128 else (0, 0, 0)
            cv2.putText(image, str(int(matrix[row, column])), (x + 15, y + cell // 2 + 8), FONT, 0.8, colour, 2, cv2.LINE_AA)
        cv2.putText(image, classes[row][:14], (5, margin_top + row * cell + cell // 2), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, classes[row][:14], (margin_left + row * cell + 5, margin_top - 10), FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"{title} (rows: true, columns: predicted)", (5, 25), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def contact_sheet(tiles: list[np.ndarray], captions: list[str], columns: int = 8, tile: int = 128) -> np.ndarray:
    """Tiles (BGR) in a grid, each with a caption bar underneath."""
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    caption_h = 34
    sheet = np.full((rows * (tile + caption_h), columns * tile, 3), 255, np.uint8)
    for index, (image, caption) in enumerate(zip(tiles, captions)):
        y, x = (index // columns) * (tile + caption_h), (index % columns) * tile
        sheet[y : y + tile, x : x + tile] = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)
        for line, text in enumerate(caption.split("\n")[:2]):
            cv2.putText(sheet, text[:22], (x + 3, y + tile + 13 + 14 * line), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet
