"""Annotated copies: face boxes coloured by label, captions that never overlap, a legend with counts.
Drawing reads only a face's box and label, so it needs nothing else of maskmodel."""

from maskmodel.drawing.draw import blur_faces, draw_faces
from maskmodel.drawing.labels import DEFAULT_STYLE, LabelStyle

__all__ = ["DEFAULT_STYLE", "LabelStyle", "blur_faces", "draw_faces"]
