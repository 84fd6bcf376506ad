"""`maskmodel models`: list, inspect, download, install and verify zoo models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from maskmodel import zoo
from maskmodel.detect.detector_config import missing_capability
from maskmodel.runtime.opencv import OpenCVCapabilityError


@click.group()
def models() -> None:
    """Manage the model zoo (published classifiers and face detectors)."""


def _headline_metric(info: zoo.ModelVersion) -> str:
    crowd = info.metrics.get("crowd-dev-faces")
    return f"crowd-dev balanced acc {crowd['balanced_accuracy']:.3f}" if crowd else ""


def _runs(info: zoo.ModelVersion) -> str:
    """Why `info` cannot run with the installed OpenCV (one line with the remedy), or `""`."""
    return (missing_capability(info.alias, info.version) or "") if info.task == "face-detection" else ""


def _files_here(info: zoo.ModelVersion) -> bool:
    """Whether every file of `info` is here (installed, cached, or built into OpenCV) and checks out."""
    try:
        for format in info.files:
            zoo.weights_path(info.name, info.version, format, download=False)
    except (zoo.WeightsUnavailableError, zoo.ChecksumError, OpenCVCapabilityError):
        return False
    return True


def _records() -> list[dict]:
    """One record per published version. `downloaded`: its files are here (installed, cached or built
    into OpenCV) and check out; `runs_here`: this OpenCV can run it (`note` says why not)."""
    records = []
    for name in zoo.list_models():
        for info in zoo.model_versions(name):
            problem = _runs(info)
            records.append({"name": name, "alias": info.alias, "version": info.version, "task": info.task,
                            "default": zoo.is_default_model(info), "default_version": info.is_default,
                            "bytes": sum(file.size or 0 for file in info.files.values()),
                            "metric": _headline_metric(info), "downloaded": _files_here(info),
                            "runs_here": not problem, "note": problem})
    return records


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: an array with a record per model version.")
def list_command(as_json: bool) -> None:
    """Every published model version: name (short name), version, task, size, headline metric, whether its
    files are downloaded (installed, cached or built into OpenCV) and whether it runs with this OpenCV.
    `default` marks what runs when no model is named; `*` a model's default version."""
    records = _records()
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    table = [("name", "version", "task", "size", "metric", "downloaded", "runs here")] + [
        (record["name"] + (f" ({record['alias']})" if record["alias"] and record["alias"] != record["name"] else "")
         + (" default" if record["default"] else ""), record["version"] + ("*" if record["default_version"] else ""),
         record["task"], f"{record['bytes'] / 1e6:.1f} MB" if record["bytes"] else "builtin", record["metric"],
         "yes" if record["downloaded"] else "no", "yes" if record["runs_here"] else "no")
        for record in records]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for record in records:
        if not record["runs_here"]:
            click.echo(f"{record['name']}@{record['version']} does not run here: {record['note']}")


@models.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The manifest record as JSON.")
def info(name: str, as_json: bool) -> None:
    """Summary of one model (NAME or NAME@VERSION)."""
    info = zoo.model_info(name)
    record = info.to_dict()
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    default = {"classification": ", the default classifier", "face-detection": ", the default face detector"}
    click.echo(f"{info.spec} ({info.task})" + (default.get(info.task, "") if zoo.is_default_model(info) else "")
               + (f", short name {info.alias}" if info.alias else ""))
    for key in ("description", "classes", "input", "metrics", "training_data", "date", "license", "source"):
        if key in record:
            _echo_value(key, record[key], 1)
    click.echo("  files:")
    for format, file in info.files.items():
        click.echo(f"    {format}: {file.file} ({(file.size or 0) / 1e6:.1f} MB, sha256 {(file.sha256 or '-')[:12]})")


def _echo_value(key: str, value: object, depth: int) -> None:
    """One readable line per value (floats to 3 decimals), nested dicts indented."""
    pad = "  " * depth
    if isinstance(value, dict):
        click.echo(f"{pad}{key}:")
        for inner, item in value.items():
            _echo_value(str(inner), item, depth + 1)
    elif isinstance(value, list):
        click.echo(f"{pad}{key}: {', '.join(_text(v) for v in value)}")
    else:
        click.echo(f"{pad}{key}: {_text(value)}")


def _text(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else json.dumps(value) if isinstance(value, dict) else str(value)


@models.command()
@click.argument("names", nargs=-1, required=True)
def download(names: tuple[str, ...]) -> None:
    """Download (or find) every file of NAMES and verify it."""
    for name in names:
        try:
            info = zoo.model_info(name)
            for format in info.files:
                click.echo(f"{zoo.weights_path(info.name, info.version, format)}")
        except (zoo.ModelNotFoundError, zoo.WeightsUnavailableError, zoo.ChecksumError) as error:
            raise click.ClickException(str(error)) from error


@models.command()
@click.option("--from", "source", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Directory holding model files (for example copied from another machine).")
def install(source: Path) -> None:
    """Copy the model files found in a directory into the cache, after checking their sha256: the zoo's
    files into the model cache, and Keras' ImageNet MobileNetV2 files (for `maskmodel train` offline)
    into Keras' folder."""
    from maskmodel.training.imagenet import install_from as install_imagenet

    try:
        installed = zoo.install_from(source) + install_imagenet(source)
    except zoo.ChecksumError as error:
        raise click.ClickException(str(error)) from error
    for path in installed:
        click.echo(f"installed {path}")
    if not installed:
        raise click.ClickException(f"no file listed in the manifest, and no Keras ImageNet MobileNetV2 file, "
                                   f"was found in {source}")


@models.command()
def verify() -> None:
    """Re-hash every cached and installed model file; exit 1 if any does not match."""
    bad = 0
    for name in zoo.list_models():
        for record in (file for info in zoo.model_versions(name) for file in info.files.values()):
            for folder in (zoo.package_weights_dir(), zoo.cache_dir()):
                path = folder / record.file
                if record.builtin or not path.exists():
                    continue
                ok = record.sha256 is None or zoo.sha256_of(path) == record.sha256
                bad += not ok
                click.echo(f"{'ok ' if ok else 'BAD'} {path}")
    if bad:
        raise click.ClickException(f"{bad} file(s) do not match the manifest")
