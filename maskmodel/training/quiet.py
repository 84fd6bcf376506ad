"""Quiet TensorFlow: its start-up lines (oneDNN, CUDA stubs, `cuInit` failures, CPU features), absl's
and Keras' log records and the libraries' Future/Deprecation warnings, hidden unless asked for.

`maskmodel train` and `export` call `quiet_tensorflow()` unless `--verbose`; `maskmodel.load(...,
format="keras")` and `maskmodel.build_model` call it unless the environment already sets
`TF_CPP_MIN_LOG_LEVEL` (then TensorFlow logs as that says)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

LOGGERS = ("tensorflow", "absl", "tf2onnx", "keras", "h5py")
WARNING_SOURCES = r"(tensorflow|keras|tf2onnx|onnx|absl|h5py|google)"


def quiet_tensorflow() -> None:
    """Load TensorFlow with its logs silenced (a no-op for TensorFlow's own lines once it is loaded)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read by TensorFlow when it loads, below
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (FutureWarning, DeprecationWarning, UserWarning):  # np.object and the like, from libraries
        warnings.filterwarnings("ignore", category=category, module=WARNING_SOURCES)
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)  # TensorFlow 2.21 writes its start-up lines (oneDNN, cuda, CPU features) to the file
    try:               # descriptor whatever TF_CPP_MIN_LOG_LEVEL says: load it with fd 2 on /dev/null
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 2)
        os.close(quiet)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; nothing to quiet without it
        pass


def quiet_unless_asked() -> None:
    """`quiet_tensorflow()`, unless the environment sets `TF_CPP_MIN_LOG_LEVEL` (the user chose a level)."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        quiet_tensorflow()
