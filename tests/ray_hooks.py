"""Run in every Ray worker process by the crash tests (`worker_process_setup_hook`): reading a file
named `crash-always*` kills the process; `crash-once*` kills it the first time only (a marker file in
$CRASH_MARKERS remembers), like a node lost mid-task."""

import os
from pathlib import Path


def crash_on_marked_files() -> None:
    import maskmodel.batch.worker

    original = maskmodel.batch.worker.read_image

    def read_image(path, *args, **kwargs):
        name = Path(path).name
        marker = Path(os.environ["CRASH_MARKERS"]) / name
        if name.startswith("crash-always") or (name.startswith("crash-once") and not marker.exists()):
            marker.touch()
            os._exit(1)
        return original(path, *args, **kwargs)

    maskmodel.batch.worker.read_image = read_image
