"""What a batch run writes besides the annotated copies: the streaming, resumable CSV report and its
summary, label exports (JSON, YOLO, VOC, COCO, crops), the HTML review page, and evaluation figures."""

from maskmodel.outputs.exports import ExportWriter
from maskmodel.outputs.html_report import build_html
from maskmodel.outputs.report import ReportWriter, Summary, read_report

__all__ = ["ExportWriter", "ReportWriter", "Summary", "build_html", "read_report"]
