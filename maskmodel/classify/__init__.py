"""Mask classification: the one crop function for face crops (`crop_face`, `resize_image`), and the ONNX
classifier that labels them (`MaskClassifier`)."""

from maskmodel.classify.classifier import InputContract, MaskClassifier
from maskmodel.classify.crops import CropPolicy, crop_face, resize_image

__all__ = ["CropPolicy", "InputContract", "MaskClassifier", "crop_face", "resize_image"]
