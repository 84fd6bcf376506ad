"""The batch run behind `maskmodel annotate`: `annotate` (`maskmodel.annotate`) crawls the inputs and
streams them through worker processes, or a Ray cluster, to annotated copies, a report and exports."""

from maskmodel.batch.run import annotate
from maskmodel.batch.worker import AnnotateSettings

__all__ = ["AnnotateSettings", "annotate"]
