"""`maskmodel models`: list, inspect, download, install and verify zoo models."""

from __future__ import annotations

from pathlib import Path

import click

from maskmodel import zoo


@click.group()
def models() -> None:
    """Manage the model zoo (published classifiers and face detectors)."""


def _headline_metric(info: dict) -> str:
    crowd = info.get("metrics", {}).get("crowd-dev-faces")
    return f"crowd-dev balanced acc {crowd['balanced_accuracy']:.3f}" if crowd else ""


def _cached(name: str, version: str, format: str) -> bool:
    try:
        zoo.weights_path(name, version, format, download=False)
    except (zoo.WeightsUnavailableError, zoo.ChecksumError):
        return False
    return True


@models.command("list")
def list_command() -> None:
    """Table of every model: name, version, task, size, headline metric, available locally."""
    rows = [("name", "version", "task", "size", "metric", "local")]
    for name in zoo.list_models():
        info = zoo.model_info(name)
        files = info["files"].values()
        size = sum(f.get("size") or 0 for f in files)
        local = all(_cached(name, info["version"], fmt) for fmt in info["files"])
        rows.append((name, info["version"], info["task"], f"{size / 1e6:.1f} MB" if size else "builtin",
                     _headline_metric(info), "yes" if local else "no"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@models.command()
@click.argument("name")
def info(name: str) -> None:
    """Summary of one model (NAME or NAME@VERSION)."""
    try:
        record = zoo.model_info(name)
    except zoo.ModelNotFoundError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{record['name']}@{record['version']} ({record['task']})")
    for key in ("description", "classes", "input", "metrics", "training_data", "date", "license", "source"):
        if key in record:
            click.echo(f"  {key}: {record[key]}")
    for format, file in record["files"].items():
        click.echo(f"  file [{format}]: {file['file']} sha256={file.get('sha256', '-')}")


@models.command()
@click.argument("names", nargs=-1, required=True)
def download(names: tuple[str, ...]) -> None:
    """Download (or find) every file of NAMES and verify it."""
    for name in names:
        try:
            record = zoo.model_info(name)
            for format in record["files"]:
                click.echo(f"{zoo.weights_path(record['name'], record['version'], format)}")
        except (zoo.ModelNotFoundError, zoo.WeightsUnavailableError, zoo.ChecksumError) as error:
            raise click.ClickException(str(error)) from error


@models.command()
@click.option("--from", "source", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Directory holding model files (for example copied from another machine).")
def install(source: Path) -> None:
    """Copy the model files found in a directory into the cache, after checking their sha256."""
    try:
        installed = zoo.install_from(source)
    except zoo.ChecksumError as error:
        raise click.ClickException(str(error)) from error
    for path in installed:
        click.echo(f"installed {path}")
    if not installed:
        raise click.ClickException(f"no file listed in the manifest was found in {source}")


@models.command()
def verify() -> None:
    """Re-hash every cached and installed model file; exit 1 if any does not match."""
    bad = 0
    for name in zoo.list_models():
        info = zoo.model_info(name)
        for format in info["files"]:
            record = zoo.weights_file(name, info["version"], format)
            for folder in (zoo.package_weights_dir(), zoo.cache_dir()):
                path = folder / record.file
                if record.builtin or not path.exists():
                    continue
                ok = record.sha256 is None or zoo.sha256_of(path) == record.sha256
                bad += not ok
                click.echo(f"{'ok ' if ok else 'BAD'} {path}")
    if bad:
        raise click.ClickException(f"{bad} file(s) do not match the manifest")
