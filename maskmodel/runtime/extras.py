"""Optional dependencies: whether the `[train]` extra (TensorFlow, Keras) is installed, and the one-line
error naming how to install it, raised before anything imports them."""

from __future__ import annotations

import importlib.util

from maskmodel.errors import MissingExtraError

TRAIN_EXTRA = ("tensorflow", "keras")
TRAIN_INSTALL = 'pip install "maskmodel[train]" (in a maskmodel checkout: pip install -e ".[train]")'


def installed(module: str) -> bool:
    """Whether `module` can be imported here (found, not imported: TensorFlow takes seconds to load)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_train_extra(needed_for: str) -> None:
    """Raise `MissingExtraError` unless TensorFlow and Keras are installed.

    Args:
        needed_for: what needs them, as the message's subject (`"maskmodel export --format tflite"`).
    """
    missing = [module for module in TRAIN_EXTRA if not installed(module)]
    if missing:
        raise MissingExtraError(f"{needed_for} needs {' and '.join(missing)} (the [train] extra), which this "
                                f"environment lacks: {TRAIN_INSTALL}")
