"""Video: frames in, faces tracked across frames with their labels smoothed, an annotated video out."""

from maskmodel.video.frames import VideoReadError, annotate_video, iter_frames
from maskmodel.video.tracking import FaceTracker

__all__ = ["FaceTracker", "VideoReadError", "annotate_video", "iter_frames"]
