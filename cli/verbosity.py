"""`--verbose`, the one switch for third-party logs and error details, accepted by every command.

Without it a command shows only its own output: OpenCV logs errors only, TensorFlow (loaded by `export`
and `train`) starts silently, and an error is one sentence without the exception's class name. The
flag is recorded in the root context's `meta`, where the command group reads it for errors."""

from __future__ import annotations

import click

KEY = "maskmodel.verbose"
HELP = "Show the logs and warnings of OpenCV, TensorFlow and Keras, and error class names (silenced by default)."


def verbose(ctx: click.Context) -> bool:
    """Whether `--verbose` was given to the command of `ctx` (or any command around it)."""
    return bool(ctx.meta.get(KEY))


def _record(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """Record the flag; on the command that runs (not a group around it: its subcommand's flag comes
    later), silence OpenCV unless it was given."""
    ctx.meta[KEY] = verbose(ctx) or value
    if not verbose(ctx) and not isinstance(ctx.command, click.Group):
        from maskmodel.runtime.opencv import silence_opencv

        silence_opencv()


def with_verbose(command: click.Command) -> click.Command:
    """`command` and, for a group, each of its subcommands (recursively), accepting `--verbose`."""
    command.params.append(click.Option(["--verbose"], is_flag=True, expose_value=False, callback=_record, help=HELP))
    for sub in getattr(command, "commands", {}).values():
        with_verbose(sub)
    return command


def load_tensorflow() -> None:
    """Load TensorFlow, silently unless `--verbose` was given (call it before anything imports Keras)."""
    from maskmodel.runtime.tensorflow_logs import tensorflow_quietly

    with tensorflow_quietly(not verbose(click.get_current_context())):
        import tensorflow  # noqa: F401
