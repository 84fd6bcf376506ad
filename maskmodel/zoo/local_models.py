"""Models you trained: a `maskmodel train` run directory, or an `.onnx` file beside its `model.json`.

A run directory holds `model.onnx`, `model.keras` and `model.json`: the same contract as a manifest
entry of the zoo (task, classes, input size and crop policy), so the runtime reads a trained model
exactly as it reads a published one. `model_record` turns such a path into a `ModelVersion` (version
`"local"`) whose `files` are local paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from maskmodel.errors import UsageError
from maskmodel.runtime.files import read_regular_file
from maskmodel.zoo.registry import ModelVersion, WeightsFile
from maskmodel.zoo.schema import check_contract

CONTRACT_NAME = "model.json"
FORMAT_FILES = {"onnx": "model.onnx", "keras": "model.keras"}
MAX_CONTRACT_BYTES = 1 << 20


def is_local_model(spec: str | os.PathLike) -> bool:
    """Whether `spec` names a local model (a folder, or a `.onnx` / `.keras` file) rather than a zoo name."""
    path = Path(spec)
    return path.is_dir() or (path.suffix.lower() in (".onnx", ".keras") and path.is_file())


def model_record(spec: str | os.PathLike) -> ModelVersion:
    """The record of a run directory or model file: name (its absolute path), version `"local"`, classes,
    input contract, and its files as local paths.

    Raises:
        UsageError: no `model.json` beside the model, or one that is not a classifier's contract.
    """
    path = Path(spec)
    folder = path if path.is_dir() else path.parent
    contract = folder / (CONTRACT_NAME if path.is_dir() else f"{path.stem}.json")
    if not contract.is_file():
        contract = folder / CONTRACT_NAME
    if not contract.is_file():
        raise UsageError(f"{spec} is not a maskmodel model: expected {folder / CONTRACT_NAME} (written by "
                         "`maskmodel train`) with its classes and input contract")
    try:
        record = json.loads(read_regular_file(contract, MAX_CONTRACT_BYTES).decode("utf-8"))
    except (ValueError, OSError) as error:
        raise UsageError(f"{contract} is not a model contract ({type(error).__name__}: {error})") from None
    check_contract(record, str(contract))
    classes = record["classes"]
    paths = ({format: folder / name for format, name in FORMAT_FILES.items() if (folder / name).is_file()}
             if path.is_dir() else {path.suffix.lower().lstrip("."): path})
    if not paths:
        raise UsageError(f"{folder} holds no model.onnx or model.keras")
    return ModelVersion(
        name=str(path.resolve()), version="local", task="classification",
        description=str(record.get("description", "a model trained with `maskmodel train`")),
        files={format: WeightsFile(format, str(file), None, file.stat().st_size, None) for format, file in paths.items()},
        input=record["input"], output=str(record.get("output", "")), license=str(record.get("license", "")),
        is_default=False, classes=tuple(classes), metrics=record.get("metrics", {}))
