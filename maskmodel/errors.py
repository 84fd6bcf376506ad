"""The library's errors: every one is a `MaskmodelError`; the CLI maps them to exit codes."""

from __future__ import annotations


class MaskmodelError(Exception):
    """Base of the errors maskmodel raises on purpose (with a message meant for the user)."""


class UsageError(MaskmodelError, ValueError):
    """The request cannot be carried out as given (conflicting paths, an output folder in use or not
    maskmodel's): nothing was written. The CLI exits with 2."""


class ModelCheckError(MaskmodelError, ValueError):
    """A model does not do what its contract says (output width is not the number of classes, outputs
    that are not finite probabilities); it is refused when it is loaded, before the first photo."""


class MissingExtraError(UsageError, ImportError):
    """A call needs an optional dependency this environment lacks (TensorFlow and Keras, the `[train]`
    extra); the message names the install line. The CLI exits with 2 and prints just that line."""
