"""Annotate on Ray (Ray Data): the same per-image work as the local engine, spread over a cluster.

The listing becomes a Ray dataset; `MaskDetector` lives in actors (models loaded once per actor);
each actor writes the annotated copies itself, so the output folder must be a path every node can
reach (a shared or network file system). Results come back in input order, so the report is the same
as the local engine's, row for row; bad files become the same `error` rows.

For users who already run Ray jobs: `annotate(inputs, settings, engine="ray")` from
`maskmodel.annotate`, or `iter_annotate_ray(items, settings)` for the rows as a stream.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from typing import TYPE_CHECKING

from maskmodel.crawl import InputFile

if TYPE_CHECKING:
    from maskmodel.annotate import AnnotateSettings

INSTALL_HINT = "the Ray engine needs Ray: pip install 'maskmodel[ray]'"


class _Annotator:
    """A Ray actor: one `MaskDetector`, many images."""

    def __init__(self, settings: AnnotateSettings) -> None:
        from maskmodel.annotate import _start_worker

        _start_worker(settings, 1)

    def __call__(self, batch: dict) -> dict:
        from maskmodel.annotate import _process

        rows = [_process(InputFile(Path(os.fsdecode(path)), os.fsdecode(relative)))
                for path, relative in zip(batch["path"], batch["relative"])]
        return {"index": batch["index"], "rows": [json.dumps(r) for r in rows]}


def iter_annotate_ray(items: list[InputFile], settings: AnnotateSettings, address: str | None = None,
                      num_cpus: int | None = None) -> Iterator[list[dict]]:
    """Report rows of each item, in input order, computed by Ray actors (one per CPU).

    Args:
        items: the files to process.
        settings: `maskmodel.annotate.AnnotateSettings`.
        address: Ray cluster address (`"auto"`, `"ray://host:port"`); `None` starts a local Ray.
        num_cpus: CPUs of a local Ray started here. Defaults to all.
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        if not items:
            return
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        dataset = ray.data.from_items([{"index": i, "path": os.fsencode(item.path), "relative": os.fsencode(item.relative)}
                                       for i, item in enumerate(items)])
        actors = max(1, min(len(items), int(ray.cluster_resources().get("CPU", 1))))
        results = dataset.map_batches(_Annotator, fn_constructor_args=(settings,), batch_size=4, concurrency=actors,
                                      num_cpus=1)
        for row in results.iter_rows():
            yield json.loads(row["rows"])
    finally:
        if started_here:
            ray.shutdown()
