"""The `maskmodel` command group. Heavy imports stay inside the commands, so `--help` is fast."""

from __future__ import annotations

import click

from cli.annotate import annotate, predict
from cli.evaluate import evaluate
from cli.export import export
from cli.models import models
from cli.train import train
from cli.watch import watch


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="maskmodel")
def main() -> None:
    """Face-mask detection: annotate photo folders, train and manage models."""


main.add_command(annotate)
main.add_command(predict)
main.add_command(evaluate)
main.add_command(export)
main.add_command(train)
main.add_command(models)
main.add_command(watch)
