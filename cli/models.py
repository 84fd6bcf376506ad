"""`maskmodel models`: list, inspect, download, install and verify zoo models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from maskmodel import zoo


@click.group()
def models() -> None:
    """Manage the model zoo (published classifiers and face detectors)."""


def _headline_metric(info: zoo.ModelVersion) -> str:
    crowd = info.metrics.get("crowd-dev-faces")
    return f"crowd-dev balanced acc {crowd['balanced_accuracy']:.3f}" if crowd else ""


def _cached(name: str, version: str, format: str) -> bool:
    try:
        zoo.weights_path(name, version, format, download=False)
    except (zoo.WeightsUnavailableError, zoo.ChecksumError):
        return False
    return True


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model, one a line.")
def list_command(as_json: bool) -> None:
    """Table of every model: name, version, task, size, headline metric, available locally."""
    rows = []
    for name in zoo.list_models():
        info = zoo.model_info(name)
        size = sum(file.size or 0 for file in info.files.values())
        local = all(_cached(name, info.version, fmt) for fmt in info.files)
        rows.append({"name": name, "alias": info.alias, "version": info.version,
                     "default": name == zoo.DEFAULT_CLASSIFIER, "task": info.task, "bytes": size,
                     "metric": _headline_metric(info), "local": local})
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    table = [("name", "version", "task", "size", "metric", "local")] + [
        (row["name"] + (" (default)" if row["default"] else "")
         + (f" ({row['alias']})" if row["alias"] and row["alias"] != row["name"] else ""), row["version"], row["task"],
         f"{row['bytes'] / 1e6:.1f} MB" if row["bytes"] else "builtin", row["metric"], "yes" if row["local"] else "no")
        for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


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
    click.echo(f"{info.spec} ({info.task})" + (", the default classifier" if info.name == zoo.DEFAULT_CLASSIFIER else "")
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
