"""Where the per-image work runs: in this process, or in a pool of worker processes that survives a
worker dying. (Ray is `maskmodel.batch.distributed`.) Results come back in input order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import cv2

from maskmodel.io.crawl import InputFile
from maskmodel.pipeline import MaskDetector
from maskmodel.outputs.report import WORKER_DIED
from maskmodel.results import ImageResult
from maskmodel.batch.worker import AnnotateSettings, Annotator

MAX_ATTEMPTS = 3  # runs of an image whose worker process dies, before it gets an error result
_process_annotator: Annotator | None = None  # the Annotator of a pool worker process (one per process)


def start_worker_process(settings: AnnotateSettings, threads: int = 1) -> Annotator:
    """Set up a worker process (pool or Ray actor): Ctrl-C is the main process's to handle, the process
    exits when its parent is gone, OpenCV uses `threads` threads. Returns its `Annotator`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(threads)
    exit_with_parent()
    return Annotator(settings)


def _pool_initializer(settings: AnnotateSettings) -> None:
    global _process_annotator
    _process_annotator = start_worker_process(settings)


def _pool_task(item: InputFile) -> ImageResult:
    return _process_annotator(item)


def exit_with_parent(interval: float = 0.5) -> None:
    """Exit this worker process as soon as the process that started it is gone (killed, crashed)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="maskmodel-parent-watch", daemon=True).start()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def iter_annotate(items: list[InputFile], settings: AnnotateSettings, jobs: int = 1,
                  detector: MaskDetector | None = None) -> Iterator[ImageResult]:
    """The `ImageResult` of each item, in input order, computed by `jobs` processes.

    With `jobs > 1`, a worker process that dies (a crash in native code, the OOM killer) is replaced;
    the images it may have held are run again one at a time, and an image whose process dies
    `MAX_ATTEMPTS` times gets an `error` result; workers exit when this process dies. With `jobs=1` the
    work runs in this process (with `detector`, if one is given).
    """
    jobs = min(jobs, available_cpus())  # more processes than CPUs only cost memory
    if jobs <= 1:
        yield from map(Annotator(settings, detector), items)
        return
    # OpenCV's own pixel limit in the workers (read when they import cv2): the run's --max-pixels
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(settings.max_pixels)
    queue = deque(range(len(items)))  # indices to submit, in order
    suspects: set[int] = set()  # in flight when a process died: rerun one at a time
    deaths: Counter = Counter()
    finished: dict[int, ImageResult] = {}
    emitted = 0
    while emitted < len(items):
        # one thread per worker process: the processes share the cores instead of oversubscribing them
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_pool_initializer,
                                   initargs=(settings,))
        running: dict[Future, int] = {}
        try:
            while True:
                while emitted in finished:
                    yield finished.pop(emitted)
                    emitted += 1
                if emitted == len(items):
                    break
                while queue and len(running) < (1 if suspects else 2 * jobs):
                    index = queue.popleft()
                    running[pool.submit(_pool_task, items[index])] = index
                for future in wait(running, return_when=FIRST_COMPLETED).done:
                    result = future.result()  # the worker's own errors (unwritable output) stop the run
                    index = running.pop(future)
                    finished[index] = result
                    suspects.discard(index)
        except BrokenProcessPool:
            lost = sorted(running.values())
            if len(lost) == 1:  # it ran alone: this image killed its process
                deaths[lost[0]] += 1
                if deaths[lost[0]] == MAX_ATTEMPTS:
                    finished[lost[0]] = ImageResult.failure(items[lost[0]].relative, WORKER_DIED.format(MAX_ATTEMPTS))
                    lost = []
            suspects.update(lost)
            queue.extendleft(reversed(lost))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


