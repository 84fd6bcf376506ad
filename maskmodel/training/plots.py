"""Training plots: loss/accuracy curves and the confusion matrix (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict[str, list], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation, with the phase boundary marked."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.plot(epochs, history[metric], label=f"train {metric}")
        axis.plot(epochs, history[f"val_{metric}"], label=f"val {metric}")
        boundary = history["phase"].count("head")
        if 0 < boundary < len(epochs):
            axis.axvline(boundary + 0.5, color="gray", linestyle="--", label="fine-tuning starts")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path, title: str = "test") -> None:
    """Confusion matrix with counts (rows: true class, columns: predicted class)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axis.text(column, row, str(count), ha="center", va="center", color=color)
    axis.set_xticks(range(len(classes)), classes)
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"confusion ({title})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
