"""The zoo's registry: `weights/manifest.json` → typed, frozen records of each model version.

A model is a name plus versions; each version lists its files (format → file name, sha256, size, URL)
and the metadata that makes it usable (input contract, classes, metrics, training data, licence). The
manifest is the single source (usable outside Python, hash-checked); Python code gets `ModelVersion`
records built from it. Face detectors also have a short name, the manifest's `alias` (`yunet`).
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from maskmodel.errors import UsageError
from maskmodel.zoo.schema import check_contract

# The defaults, in one place (read by `models list/info`, the CLI's options, the API and the docs' tests):
# the classifier used when none is named, the most accurate on crowd-dev and the fastest (see
# weights/MODEL_CARD.md and docs/benchmarks.md), and the face detector (by its short name).
DEFAULT_CLASSIFIER = "mask-mobilenetv2-0.35"
DEFAULT_FACE_DETECTOR = "centerface"
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


class ModelNotFoundError(UsageError, KeyError):
    """Unknown model name or version, or a model of the wrong kind; the message lists what exists."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class WeightsFile:
    """One file of a model version."""

    format: str
    file: str
    sha256: str | None
    size: int | None
    url: str | None
    builtin: bool = False
    upstream: bool = False

    def to_dict(self) -> dict:
        """The manifest's record of this file."""
        record = {"file": self.file, "sha256": self.sha256, "size": self.size, "url": self.url,
                  "builtin": self.builtin or None, "upstream": self.upstream or None}
        return {key: value for key, value in record.items() if value is not None}


def package_weights_dir() -> Path:
    """Where the published weights live: inside the installed package, or `weights/` of a checkout."""
    installed = Path(__file__).parent.parent / "weights"
    if (installed / "manifest.json").exists():
        return installed
    return Path(__file__).resolve().parent.parent.parent / "weights"


@lru_cache(maxsize=None)
def _load_manifest(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def manifest() -> dict:
    """The parsed `manifest.json` of the installed weights."""
    return _load_manifest(package_weights_dir() / "manifest.json")


@dataclass(frozen=True)
class ModelVersion:
    """One published version of a model, typed, as the manifest records it (the manifest stays the single
    source: this is a read-only view of one of its entries, in the spirit of torchvision's `Weights`).

    `files` maps a format (`"onnx"`, `"keras"`, `"pb"`, ...) to its `WeightsFile`; `input` is the input
    contract (size, colour order, crop policy for classifiers); `metrics` is keyed by evaluation set;
    `alias` is a face detector's short name (`"yunet"`); `is_default` tells whether this is the model's
    default version; `settings` are a face detector's settings this model was measured with, where they differ
    from its class's defaults (a fine-tuned CenterFace's score threshold). Fields a model does not have are empty (`()`, `{}`, `""`, `None`).
    """

    name: str
    version: str
    task: str
    description: str
    files: dict[str, WeightsFile]
    input: dict
    output: str
    license: str
    is_default: bool
    alias: str | None = None
    classes: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict)
    architecture: dict = field(default_factory=dict)
    training_data: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    command: str = ""
    training_seconds: float | None = None
    date: str = ""
    source: str = ""
    settings: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)  # a detector's network: multiply-adds and ms a pass by input size

    @property
    def spec(self) -> str:
        """`name@version`, the string that loads exactly this version."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict:
        """The manifest record (as JSON data) with `name`, `version`, `task`, `alias` and `default` added."""
        record = {"name": self.name, "version": self.version, "task": self.task, "alias": self.alias,
                  "default": self.is_default, "description": self.description,
                  "files": {fmt: file.to_dict() for fmt, file in self.files.items()}, "input": self.input,
                  "output": self.output, "license": self.license}
        optional = {"classes": list(self.classes), "metrics": self.metrics, "architecture": self.architecture,
                    "training_data": self.training_data, "recipe": self.recipe, "command": self.command,
                    "training_seconds": self.training_seconds, "date": self.date, "source": self.source,
                    "settings": self.settings, "cost": self.cost}
        return {**record, **{key: value for key, value in optional.items() if value not in ((), [], {}, "", None)}}


def _model_version(name: str, entry: dict, version: str) -> ModelVersion:
    record = copy.deepcopy(entry["versions"][version])
    unknown = set(record) - {f.name for f in fields(ModelVersion)}
    if unknown:
        raise ValueError(f"Unknown field(s) {sorted(unknown)} in the manifest record of {name}@{version}")
    if entry["task"] == "classification":
        check_contract({**record, "task": entry["task"]}, f"the manifest record of {name}@{version}")
    files = {fmt: _weights_file(fmt, file) for fmt, file in record.pop("files").items()}
    return ModelVersion(name=name, version=version, task=entry["task"], files=files, alias=entry.get("alias"),
                        is_default=version == entry["default"], classes=tuple(record.pop("classes", ())), **record)


def _weights_file(format: str, record: dict) -> WeightsFile:
    base = os.environ.get("MASKMODEL_BASE_URL")  # a mirror holding every file under its name
    url = f"{base.rstrip('/')}/{record['file']}" if base and record.get("url") else record.get("url")
    return WeightsFile(format, record["file"], record.get("sha256"), record.get("size"), url,
                       bool(record.get("builtin")), bool(record.get("upstream")))


def is_default_model(info: ModelVersion) -> bool:
    """Whether `info` is what runs when no model is named: the default classifier or face detector, at its
    default version."""
    default = DEFAULT_CLASSIFIER if info.task == "classification" else detector_aliases().get(DEFAULT_FACE_DETECTOR)
    return info.name == default and info.is_default


def list_models(task: str | None = None) -> list[str]:
    """Names of all models in the zoo (optionally only those of one `task`)."""
    models = manifest()["models"]
    return sorted(name for name, entry in models.items() if task is None or entry["task"] == task)


def model_versions(name: str) -> list[ModelVersion]:
    """Every published version of a model (name or alias), oldest first."""
    name = _canonical(name)
    entry = manifest()["models"][name]
    return [_model_version(name, entry, version) for version in entry["versions"]]


def detector_aliases() -> dict[str, str]:
    """Face detector short names (the manifest's `alias`) → zoo model names."""
    models = manifest()["models"]
    return {entry["alias"]: name for name, entry in models.items() if entry["task"] == "face-detection"}


def _canonical(name: str) -> str:
    """The zoo model name of `name` or of a detector alias; `ModelNotFoundError` listing what exists."""
    models = manifest()["models"]
    name = detector_aliases().get(name, name)
    if name not in models:
        raise ModelNotFoundError(f"Unknown model {name!r}. Available: {', '.join(sorted(models))} (face detectors "
                                 f"also by short name: {', '.join(detector_aliases())}), or the path of a run "
                                 "directory of `maskmodel train`")
    return name


def _split_name(name: str, version: str | None) -> tuple[str, str | None]:
    if "@" in name:
        if version is not None:
            raise ValueError(f"Expected a version in the name or in version=, not both. Received: {name!r}")
        name, version = name.split("@", 1)
    return name, version


def model_info(name: str, version: str | None = None) -> ModelVersion:
    """The record of `name` (`name@version` accepted; a face detector also by its alias, `"yunet"`), the
    default version if none is given.

    Raises:
        ModelNotFoundError: unknown model, or unknown version (each lists what exists).
    """
    name, version = _split_name(name, version)
    name = _canonical(name)
    entry = manifest()["models"][name]
    version = version or entry["default"]
    if version not in entry["versions"]:
        raise ModelNotFoundError(
            f"Unknown version {version!r} of {name!r}. Available: {', '.join(entry['versions'])}"
        )
    return _model_version(name, entry, version)


def weights_file(name: str, version: str | None = None, format: str | None = None) -> WeightsFile:
    """The manifest's file record of a model version in `format` (its first file if None)."""
    info = model_info(name, version)
    format = format or next(iter(info.files))
    if format not in info.files:
        raise ModelNotFoundError(f"Model {info.spec} has no {format!r} file. Available: {', '.join(info.files)}")
    return info.files[format]
