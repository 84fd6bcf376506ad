"""The `maskmodel` command group. Heavy imports stay inside the commands, so `--help` is fast.

The library's errors are mapped to exit codes here, in one place: a `maskmodel.errors.UsageError`
(conflicting paths, an unknown or wrong model, an unreadable dataset: nothing was done) exits with 2,
a `MissingExtraError` (TensorFlow or Keras not installed) with 2 as one line naming the install command,
any other `MaskmodelError` with 1, each as one line without a traceback (`cli.errors.describe`; the
exception's class name only with `--verbose`, which every command accepts: `cli.verbosity`).
"""

from __future__ import annotations

import click

from maskmodel.cli.annotate import annotate, predict
from maskmodel.cli.errors import describe
from maskmodel.cli.evaluate import evaluate
from maskmodel.cli.export import export
from maskmodel.cli.models import models
from maskmodel.cli.train import train
from maskmodel.cli.train_detector import train_detector
from maskmodel.cli.verbosity import verbose, with_verbose
from maskmodel.cli.watch import watch


class MaskmodelGroup(click.Group):
    """The command group, turning the library's errors into Click's (and so into exit codes)."""

    def invoke(self, ctx: click.Context):
        from maskmodel.errors import MaskmodelError, MissingExtraError, UsageError

        try:
            return super().invoke(ctx)
        except MissingExtraError as error:  # one line: the usage of the command is not what went wrong
            failure = click.ClickException(describe(error, verbose(ctx)))
            failure.exit_code = 2
            raise failure from error
        except UsageError as error:  # with the usage line of the command that was run, not the group's
            raise click.UsageError(describe(error, verbose(ctx)), _innermost_context(error, ctx)) from error
        except MaskmodelError as error:
            raise click.ClickException(describe(error, verbose(ctx))) from error


def _innermost_context(error: BaseException, default: click.Context) -> click.Context:
    """The context of the innermost command `error` went through (`maskmodel evaluate detect`'s, not
    the group's): the last `ctx` of a Click frame in its traceback."""
    found, frame = default, error.__traceback__
    while frame is not None:
        ctx = frame.tb_frame.f_locals.get("ctx")
        found = ctx if isinstance(ctx, click.Context) else found
        frame = frame.tb_next
    return found


@click.group(cls=MaskmodelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="maskmodel")
def main() -> None:
    """Face-mask detection: annotate photo folders, train and manage models."""


for command in (annotate, predict, evaluate, export, train, train_detector, models, watch):
    main.add_command(command)
with_verbose(main)
