"""Atheris fuzz target for the image decoder: any bytes give an image or an `ImageReadError`, nothing else.

    pip install atheris
    python fuzz/fuzz_imageio.py -atheris_runs=100000 -max_len=65536

A crash (any other exception, or OpenCV aborting) is written as `crash-*` with the input that caused it.
"""

import sys

import atheris
import numpy as np

with atheris.instrument_imports():
    from maskmodel.io.imageio import ImageReadError, decode_image


def test_one_input(data: bytes) -> None:
    try:
        image = decode_image(np.frombuffer(data, dtype=np.uint8), max_pixels=4_000_000)
    except ImageReadError:
        return
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
