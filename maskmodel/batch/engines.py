"""Where the per-image work runs: in this process, or in a pool of worker processes that survives a
worker dying. (Ray is `maskmodel.batch.distributed`.) Results come back in input order.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

import cv2

from maskmodel.io.crawl import InputFile
from maskmodel.outputs.report import WORKER_DIED
from maskmodel.results import ImageResult
from maskmodel.batch.worker import AnnotateSettings, Annotator, build_detector
from maskmodel.pipeline import MaskDetector
from maskmodel.runtime.opencv import LOG_LEVEL_SILENT, quiet_opencv

AUTO_MIN_PHOTOS = 64  # photos from which `--jobs auto` starts a process per CPU (docs/benchmarks.md)
MAX_ATTEMPTS = 3  # runs of an image whose worker process dies, before it gets an error result
_process_detector: MaskDetector | None = None  # the networks of a pool worker process, loaded as it starts
_process_annotator: Annotator | None = None  # its Annotator, made with the first task's settings
_process_error: Exception | None = None  # why its networks did not load
PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent ends (Linux)


def start_worker_process(settings: AnnotateSettings, threads: int = 1, parent: int | None = None) -> Annotator:
    """Set up a worker process (pool or Ray actor): the process exits when its parent (`parent`, default the
    process that started it) is gone, Ctrl-C is the main process's to handle, OpenCV uses `threads` threads.
    Returns its `Annotator`."""
    _prepare_worker(threads, parent)
    return Annotator(settings)


def _prepare_worker(threads: int, parent: int | None) -> None:
    exit_with_parent(parent)  # first: a parent killed while this process started must not leave it behind
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(threads)


def _pool_initializer(settings: AnnotateSettings, parent: int, threads: int) -> None:
    global _process_detector, _process_error
    _prepare_worker(threads, parent)
    try:  # silently: the main process loads the same models meanwhile and says once what is wrong with them
        with quiet_opencv(LOG_LEVEL_SILENT):
            _process_detector = build_detector(settings)
    except Exception as error:  # noqa: BLE001 (raised again by the first task, if the run gets that far)
        _process_error = error


def _pool_task(item: InputFile, settings: AnnotateSettings) -> ImageResult:
    """One item, with the run's final settings (the networks were loaded from the same ones as the process
    started, before the main process chose its temporary-file prefix)."""
    global _process_annotator
    if _process_error is not None:
        raise _process_error
    if _process_annotator is None or _process_annotator.settings != settings:
        _process_annotator = Annotator(settings, _process_detector)
    return _process_annotator(item)


def start_workers(settings: AnnotateSettings, jobs: int) -> ProcessPoolExecutor:
    """`jobs` worker processes (one thread each, or every core for one), started now: each loads the networks
    of `settings` while this process goes on checking the run; give them to `iter_annotate`."""
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(settings.max_pixels)  # OpenCV's own limit, read at import
    threads = available_cpus() if jobs == 1 else 1  # the processes share the cores instead of oversubscribing them
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_pool_initializer,
                               initargs=(settings, os.getpid(), threads))
    with caller_script_hidden():
        for _ in range(jobs):
            pool.submit(int)  # each submit starts a process, up to `jobs`
    return pool


@contextmanager
def caller_script_hidden() -> Iterator[None]:
    """While worker processes start: hide the caller's script (`__main__`'s `__file__` and `__spec__`) from
    multiprocessing's spawn. The workers need nothing of it (their tasks are this module's functions), and a
    script without an `if __name__ == "__main__":` guard would otherwise run again in every worker, calling
    `annotate` there."""
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main is not None and name in main.__dict__}
    if "__file__" in saved:
        del main.__file__
    if "__spec__" in saved:
        main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def exit_with_parent(parent: int | None = None, interval: float = 0.5) -> None:
    """Exit this worker process as soon as `parent` (default: the process that started it) is gone (killed,
    crashed), also when it died before this call. On Linux the kernel sends SIGTERM when the parent (the
    thread that started this process) ends (`PR_SET_PDEATHSIG`), set before the parent is checked, so no
    death falls between; a thread also polls the parent's pid (other systems)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    parent = os.getppid() if parent is None else parent
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="maskmodel-parent-watch", daemon=True).start()


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask (not the machine's count), capped by a cgroup CPU quota
    (a container given 1.5 CPUs of 16 gets 2)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs the cgroup quota under `root` allows (v2 `cpu.max`, else v1 `cpu/cpu.cfs_quota_us`); `None` without
    a quota."""
    limit = _read(root / "cpu.max")
    if limit is not None:
        quota, period = (limit.split() + ["100000"])[:2]
    else:
        quota, period = _read(root / "cpu/cpu.cfs_quota_us"), _read(root / "cpu/cpu.cfs_period_us")
    try:
        allowed = float(quota) / float(period)
    except (TypeError, ValueError, ZeroDivisionError):  # no such file, "max" (no limit)
        return None
    return allowed if allowed > 0 else None  # v1 writes -1 for no limit


def _read(path: Path) -> str | None:
    try:
        with open(path) as file:
            return file.read(64)
    except (OSError, ValueError):
        return None


def worker_count(jobs: int | str, photos: int) -> int:
    """Processes for `photos` photos: `jobs` capped at the CPUs and the photos; `"auto"` is one per CPU, or one
    in all for fewer than `AUTO_MIN_PHOTOS` photos (a second process's start-up costs more than it saves there:
    docs/benchmarks.md). Each worker process runs its networks on one thread, so the processes never
    oversubscribe the cores; a single process (jobs 1) runs them on every core."""
    cpus = available_cpus()
    if jobs == "auto":
        return cpus if photos >= AUTO_MIN_PHOTOS else 1
    return max(1, min(int(jobs), cpus, photos))


def iter_annotate(items: list[InputFile], settings: AnnotateSettings, jobs: int | str = 1,
                  workers: ProcessPoolExecutor | None = None) -> Iterator[ImageResult]:
    """The `ImageResult` of each item, in input order, computed by `jobs` worker processes (one for `jobs` 1,
    running its networks on every core; `workers` from `start_workers(settings, jobs)` if already started):
    decoding and encoding untrusted files never happens in this process, so a crash in native code costs one
    image, not the run.

    A worker process that dies (a crash in native code, the OOM killer) is replaced; the images it may have
    held are run again one at a time, and an image whose process dies `MAX_ATTEMPTS` times gets an `error`
    result; workers exit when this process dies.
    """
    jobs = worker_count(jobs, len(items))
    queue = deque(range(len(items)))  # indices to submit, in order
    suspects: set[int] = set()  # in flight when a process died: rerun one at a time
    deaths: Counter = Counter()
    finished: dict[int, ImageResult] = {}
    emitted = 0
    while emitted < len(items):
        pool, workers = workers or start_workers(settings, jobs), None
        running: dict[Future, int] = {}
        try:
            while True:
                while emitted in finished:
                    yield finished.pop(emitted)
                    emitted += 1
                if emitted == len(items):
                    break
                with caller_script_hidden():  # a submit may start a process
                    while queue and len(running) < (1 if suspects else 2 * jobs):
                        index = queue.popleft()
                        running[pool.submit(_pool_task, items[index], settings)] = index
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


