"""Face detection: the detectors (YuNet, CenterFace, SSD, Haar) behind one small interface, the settings
that build them (`DetectorConfig`), box merging and the box styles that fit boxes to a dataset."""

from maskmodel.detect.boxstyle import BoxAdjust
from maskmodel.detect.centerface import CenterFaceDetector
from maskmodel.detect.detector_config import DetectorConfig, available_detectors, create_face_detector
from maskmodel.detect.faces import FaceDetector, HaarDetector, SSDDetector, YuNetDetector

__all__ = ["BoxAdjust", "CenterFaceDetector", "DetectorConfig", "FaceDetector", "HaarDetector", "SSDDetector",
           "YuNetDetector", "available_detectors", "create_face_detector"]
