"""Files in and out: robust image decoding and atomic encoding, input discovery (files, folders, URIs),
local and remote output folders, output names that never replace an input, and the output folder's
record of what a run wrote."""

from maskmodel.io.imageio import ImageReadError, read_image  # first: it sets OpenCV's pixel limit before cv2 loads
from maskmodel.io.crawl import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputFile, iter_inputs
from maskmodel.io.storage import open_folder

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "ImageReadError", "InputFile", "iter_inputs", "open_folder",
           "read_image"]
