"""An error as the one sentence a user reads: what failed, on which file, and what to do; the
exception's class name only with `--verbose`."""

from __future__ import annotations

import errno

REMEDIES = {
    errno.ENOSPC: "free some space or choose another --out, then run the same command with --resume",
    errno.EDQUOT: "free some space or choose another --out, then run the same command with --resume",
    errno.EACCES: "check the permissions of the file and its folder",
    errno.EPERM: "check the permissions of the file and its folder",
    errno.EROFS: "choose an --out on a writable file system",
    errno.ENOENT: "check the path",
}


def describe(error: BaseException, verbose: bool = False, path: object = None) -> str:
    """One line for `error`: for an `OSError` its file (else `path`, what the command was writing),
    the system's reason and a remedy; for a `ModelCheckError` the remedy; otherwise its message."""
    from maskmodel.errors import ModelCheckError

    if isinstance(error, OSError) and error.strerror:
        where = error.filename or path
        remedy = REMEDIES.get(error.errno)
        text = (f"{where}: " if where else "") + error.strerror + (f"; {remedy}" if remedy else "")
    elif isinstance(error, ModelCheckError):
        text = f"{error}; use the model with the manifest entry or contract.json it was published with"
    else:
        text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text}" if verbose else text
