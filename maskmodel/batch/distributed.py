"""Annotate on Ray (Ray Data): the same per-image work as the local engine, spread over a cluster.

The listing becomes a Ray dataset; `MaskDetector` lives in actors (models loaded once per actor);
each actor writes the annotated copies itself, to a folder every node reaches: a shared file system
or a URI such as `s3://bucket/run` (`maskmodel.io.storage`). Results come back in input order, so the
report is the same as the local engine's, row for row; bad files become the same `error` results.

A worker process that dies (a crash in native code, the OOM killer, a lost node) is replaced and its
batch retried; a batch that fails `MAX_ATTEMPTS` times is taken apart and its images retried one
by one, so one image that kills its worker every time ends as an `error` result and the rest complete.

For users who already run Ray jobs: `annotate(inputs, settings, engine="ray")` from
`maskmodel.annotate`, or `iter_annotate_ray(items, settings)` for the `ImageResult`s as a stream. Each actor
holds a `maskmodel.batch.worker.Annotator`, the same object the local engine's processes hold.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from maskmodel.batch.engines import MAX_ATTEMPTS, start_worker_process
from maskmodel.io.crawl import InputFile
from maskmodel.outputs.report import WORKER_DIED
from maskmodel.results import ImageResult
from maskmodel.batch.worker import AnnotateSettings

INSTALL_HINT = "the Ray engine needs Ray: pip install '.[ray]' (from a checkout)"
BATCH_SIZE = 4  # images per call of an actor
BLOCK_SIZE = 32  # images per Ray Data block: the unit that is retried, then taken apart


class _Annotator:
    """A Ray actor: one `MaskDetector`, many images; each image's `ImageResult` travels pickled."""

    def __init__(self, settings: AnnotateSettings) -> None:
        self._annotate = start_worker_process(settings)

    def __call__(self, batch: dict) -> dict:
        fields = zip(batch["path"], batch["relative"], batch["source"], batch["output"], batch["error"])
        return {"index": batch["index"], "result": [pickle.dumps(self._annotate(_item(*values))) for values in fields]}


def _record(index: int, item: InputFile) -> dict:
    """An input file as a row of the Ray dataset (bytes keep any file name intact)."""
    return {"index": index, "path": os.fsencode(item.path), "relative": os.fsencode(item.relative),
            "source": item.source or "", "output": os.fsencode(item.output or ""), "error": item.error or ""}


def _item(path: bytes, relative: bytes, source: str, output: bytes, error: str) -> InputFile:
    """The input file of a dataset row."""
    kind = PurePosixPath if source else Path
    return InputFile(kind(os.fsdecode(path)), os.fsdecode(relative), source or None, os.fsdecode(output) or None,
                     error or None)


def _annotate_alone(record: dict, settings: AnnotateSettings) -> ImageResult:
    """One image in a Ray task of its own: the retry of the images of a failed batch."""
    annotate = start_worker_process(settings)
    return annotate(_item(record["path"], record["relative"], record["source"], record["output"], record["error"]))


def iter_annotate_ray(items: list[InputFile], settings: AnnotateSettings, address: str | None = None,
                      num_cpus: int | None = None) -> Iterator[ImageResult]:
    """The `ImageResult` of each item, in input order, computed by Ray actors (one per CPU).

    Args:
        items: the files to process.
        settings: `maskmodel.AnnotateSettings`.
        address: Ray cluster address (`"auto"`, `"ray://host:port"`); `None` starts a local Ray.
        num_cpus: CPUs of a local Ray started here. Defaults to all.
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # Ray's and Ray Data's INFO lines are not the user's business
    context = ray.data.DataContext.get_current()
    saved = context.execution_options.preserve_order, context.max_errored_blocks
    data_log = logging.getLogger("ray.data")
    saved_level = data_log.level
    data_log.setLevel(logging.ERROR)  # its per-dataset INFO lines and progress log
    context.execution_options.preserve_order = True
    context.max_errored_blocks = -1  # a failed block is skipped here and its images retried alone
    try:
        if not items:
            return
        records = [_record(index, item) for index, item in enumerate(items)]
        actors = max(1, min(len(items), int(ray.cluster_resources().get("CPU", 1))))
        # at least four blocks per actor, of at most BLOCK_SIZE images
        block_size = min(BLOCK_SIZE, math.ceil(len(items) / (4 * actors)))
        dataset = ray.data.from_items(records, override_num_blocks=math.ceil(len(items) / block_size))
        with warnings.catch_warnings():  # max_task_retries has no named parameter yet (Ray < 2.64)
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            results = dataset.map_batches(_Annotator, fn_constructor_args=(settings,), batch_size=BATCH_SIZE,
                                          compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1,
                                          max_task_retries=MAX_ATTEMPTS - 1)
        alone = ray.remote(num_cpus=1, max_retries=MAX_ATTEMPTS - 1)(_annotate_alone)
        expected = 0
        for row in results.iter_rows():
            for missing in range(expected, row["index"]):
                yield _retry(ray, alone, records[missing], settings)
            yield pickle.loads(row["result"])
            expected = row["index"] + 1
        for missing in range(expected, len(items)):
            yield _retry(ray, alone, records[missing], settings)
    finally:
        context.execution_options.preserve_order, context.max_errored_blocks = saved
        data_log.setLevel(saved_level)
        if started_here:
            ray.shutdown()


def _retry(ray, alone, record: dict, settings: AnnotateSettings) -> ImageResult:
    """The result of one image of a failed batch, processed alone; an `error` result if its worker dies
    every time. Errors of maskmodel itself (an unwritable output) stop the run, as locally."""
    try:
        return ray.get(alone.remote(record, settings))
    except ray.exceptions.RayTaskError as error:
        raise error.cause from None
    except ray.exceptions.RayError:
        return ImageResult.failure(os.fsdecode(record["relative"]), WORKER_DIED.format(MAX_ATTEMPTS))
