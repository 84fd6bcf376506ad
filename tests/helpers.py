"""Paths of the shared test data and small helpers the tests share (fixtures are in conftest.py)."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FACE_MODELS = SHARED / "models" / "face"
CROWD_DEV = SHARED / "datasets" / "crowd-dev"
COVID = SHARED / "datasets" / "covid19-facemask"
ILC = SHARED / "datasets" / "ilc-2021"


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write `image` by its suffix (works for non-ASCII names)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp") else ".png", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def rows_of(out: Path) -> list[dict]:
    """The rows of `out`'s report.csv."""
    with open(out / "report.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def tree(root: Path, skip: Path | None = None) -> dict[Path, str]:
    """Every file under `root` (not following links, leaving out the folder `skip`) with its sha256, links with
    their target."""
    found = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if skip is None or Path(directory) / d != skip]
        for name in files:
            path = Path(directory) / name
            found[path] = os.readlink(path) if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def crowd_images(count: int) -> list[Path]:
    """The first `count` crowd-dev photos (sorted), real street scenes with annotated faces."""
    return sorted((CROWD_DEV / "images").glob("*.png"))[:count]


def upload_tree(folder: Path, uri: str) -> None:
    """Copy a local tree into a remote folder with pyarrow itself (not maskmodel's code)."""
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(uri)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with filesystem.open_output_stream(f"{root}/{path.relative_to(folder).as_posix()}") as stream:
                stream.write(path.read_bytes())


def tiny_classifier(folder: Path, classes=("with_mask", "without_mask"), outputs: int | None = None,
                    softmax: bool = True, bias: float = 0.0, size: int = 32) -> Path:
    """A run folder (`model.onnx` + `model.json`) of a tiny ONNX classifier built with `onnx.helper`:
    mean colour → `outputs` values (default: one per class), a softmax unless told otherwise."""
    import json

    from onnx import TensorProto, helper, numpy_helper, save

    outputs = len(classes) if outputs is None else outputs
    weights = numpy_helper.from_array(np.linspace(-0.01, 0.01, 3 * outputs, dtype=np.float32).reshape(3, outputs), "w")
    offsets = numpy_helper.from_array(np.full(outputs, bias, np.float32), "b")
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w", "b"], ["logits" if softmax else "probabilities"])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, size, size])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", outputs])],
                              [weights, offsets])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    save(model, str(folder / "model.onnx"))
    contract = {"task": "classification", "classes": list(classes),
                "input": {"size": size, "crop": {"margin": 0.2, "square": True}}}
    (folder / "model.json").write_text(json.dumps(contract))
    return folder


def small_dataset(root: Path, per_split: int = 3) -> Path:
    """A folder-per-class set of copies of covid19 photos."""
    for split in ("train", "val", "test"):
        for label in ("with_mask", "without_mask"):
            (root / split / label).mkdir(parents=True)
            for source in sorted((COVID / split / label).iterdir())[:per_split]:
                shutil.copyfile(source, root / split / label / source.name)
    return root


def workers_of(pid: int, group: bool = False) -> list[int]:
    """The worker processes `pid` spawned (multiprocessing's `spawn_main`), or with `group` those of the
    process group `pid` (a process started in a session of its own: found also after it died)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1 + group]) == pid
                    and b"spawn_main" in (entry / "cmdline").read_bytes()):
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (reads /proc)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
