"""TensorFlow loaded quietly: its start-up lines (oneDNN, CUDA stubs, `cuInit` failures, CPU features),
absl's and Keras' log records and the libraries' Future/Deprecation warnings hidden.

This module imports nothing of TensorFlow: the caller imports it inside `tensorflow_quietly()`.
`maskmodel train` and `export` use it unless `--verbose`; `maskmodel.load(..., format="keras")` and
`maskmodel.build_model` unless the environment sets `TF_CPP_MIN_LOG_LEVEL` (then TensorFlow logs as
that says)."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LOGGERS = ("tensorflow", "absl", "tf2onnx", "keras", "h5py")
WARNING_SOURCES = r"(tensorflow|keras|tf2onnx|onnx|absl|h5py|google)"


def user_chose_a_level() -> bool:
    """Whether the environment sets TensorFlow's log level itself (`TF_CPP_MIN_LOG_LEVEL`)."""
    return "TF_CPP_MIN_LOG_LEVEL" in os.environ


@contextmanager
def tensorflow_quietly(quiet: bool = True) -> Iterator[None]:
    """Import TensorFlow or Keras inside this block to load them silently (`quiet=False`: as they are).

    TensorFlow 2.21 writes its start-up lines to file descriptor 2 whatever `TF_CPP_MIN_LOG_LEVEL`
    says, so the block runs with fd 2 on /dev/null (when TensorFlow is not loaded yet)."""
    if not quiet:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read by TensorFlow when it loads
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):  # np.object and the like, from libraries
        warnings.filterwarnings("ignore", category=category, module=WARNING_SOURCES)
    if "tensorflow" in sys.modules:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        silent = os.open(os.devnull, os.O_WRONLY)
        os.dup2(silent, 2)
        os.close(silent)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
