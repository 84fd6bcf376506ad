"""`maskmodel` for the Ctrl-C test: the main process of `annotate` stops after reporting `PAUSE_AFTER` images,
creates the file $READY_FILE and waits there, so the test's signal always lands mid-run, however late it
comes (a loaded machine once let the run finish first). Run as `python -c "import interrupt_hooks;
interrupt_hooks.main()" annotate ...` with this folder on PYTHONPATH."""

import os
import time
from pathlib import Path

PAUSE_AFTER = 3


def pause_mid_run() -> None:
    """Make the run wait before reporting image PAUSE_AFTER + 1, once $READY_FILE says so."""
    import maskmodel.batch.run

    original, reported = maskmodel.batch.run.report_rows, []

    def report_rows(result):
        if len(reported) == PAUSE_AFTER:
            Path(os.environ["READY_FILE"]).touch()
            while True:  # until the signal
                time.sleep(1)
        reported.append(result.path)
        return original(result)

    maskmodel.batch.run.report_rows = report_rows


def main() -> None:
    from maskmodel.cli.main import main as cli

    pause_mid_run()
    cli(prog_name="maskmodel")
