"""A verified local copy of a zoo file: found or downloaded, always checked by sha256.

A file is looked for, in order: an explicit path, the weights installed with the package, the cache
(`$MASKMODEL_HOME`, default `~/.cache/maskmodel`), then a download from its URL (`$MASKMODEL_BASE_URL`
points every file at a mirror instead), checked against its sha256 and written atomically.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from maskmodel.errors import MaskmodelError
from maskmodel.runtime.files import cache_dir, new_file, regular_file_handle
from maskmodel.zoo.registry import WeightsFile, list_models, model_versions, package_weights_dir, weights_file

CHUNK = 1 << 20


class WeightsUnavailableError(MaskmodelError, RuntimeError):
    """A weights file is neither installed nor cached and could not be downloaded."""


class ChecksumError(MaskmodelError, RuntimeError):
    """A file's sha256 differs from the manifest's."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with os.fdopen(regular_file_handle(path), "rb") as stream:  # a FIFO or device: refused, never read
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_path(
    name: str,
    version: str | None = None,
    format: str | None = None,
    path: str | os.PathLike | None = None,
    download: bool = True,
) -> Path:
    """A verified local copy of a model file, found or downloaded in the zoo's resolution order.

    Args:
        name: model name, optionally `name@version`.
        version: version; defaults to the model's default version.
        format: file format (`"onnx"`, `"keras"`, ...); defaults to the model's first file.
        path: an explicit file to use instead (checked against the manifest's sha256).
        download: allow downloading when no local copy exists. Defaults to `True`.

    Raises:
        ModelNotFoundError: unknown name, version or format.
        ChecksumError: an explicit or installed file does not match the manifest.
        WeightsUnavailableError: no local copy and the download failed or was not allowed.
    """
    record = weights_file(name, version, format)
    if record.builtin:
        return _builtin_path(record.file)
    if path is not None:
        return _verified(Path(path), record)
    installed = package_weights_dir() / record.file
    if installed.exists():
        return _verified(installed, record)
    cached = cache_dir() / record.file
    if cached.exists():
        try:
            actual = sha256_of(cached) if record.sha256 else None
        except OSError as error:
            actual = f"none: {error}"
        if actual == record.sha256:
            return cached
        problem = f"the cached {cached} has sha256 {actual}, expected {record.sha256}; "
    else:
        problem = ""
    if not download or not record.url:
        raise WeightsUnavailableError(_offline_message(record, cached, problem + "downloads are disabled"))
    try:
        return download_file(record, cached)
    except WeightsUnavailableError as error:
        raise WeightsUnavailableError(problem + str(error)) from error


def _builtin_path(file_name: str) -> Path:
    import cv2

    from maskmodel.runtime.opencv import require

    require("cascade_classifier", f"{file_name} (a data file of OpenCV's cascade classifier)")
    return Path(cv2.data.haarcascades) / file_name


def _verified(path: Path, record: WeightsFile) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"Expected an existing weights file. Received: path={str(path)!r}")
    if record.sha256 and sha256_of(path) != record.sha256:
        raise ChecksumError(
            f"{path} does not match the manifest: expected sha256 {record.sha256} for {record.file}; "
            "the file is corrupt, truncated or of another version (a model you trained is loaded by its "
            "run directory or .onnx file as the name: maskmodel.load('runs/mine'))"
        )
    return path


def _offline_message(record: WeightsFile, target: Path, reason: str) -> str:
    return (
        f"Cannot get {record.file} ({reason}). Download it from {record.url} into {target.parent} "
        f"(or set MASKMODEL_HOME / MASKMODEL_BASE_URL), or copy verified files into the cache with "
        f"`maskmodel models install --from DIR`."
    )


def download_file(record: WeightsFile, target: Path, timeout: float = 60.0, deadline: float = 900.0) -> Path:
    """Download `record` to `target`: temporary file, sha256 check, then an atomic rename.

    A server that sends nothing for `timeout` seconds (a stall), or a download still running after
    `deadline` seconds (a trickle), is given up with `WeightsUnavailableError`. Two processes
    downloading the same file each write their own temporary file; the renames are atomic, so
    `target` only ever holds a complete, verified copy.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{record.file}.", suffix=".part")
    try:
        digest, received = hashlib.sha256(), 0
        give_up = time.monotonic() + deadline
        with os.fdopen(handle, "wb") as stream, urllib.request.urlopen(record.url, timeout=timeout) as response:
            expected = record.size or int(response.headers.get("Content-Length") or 0)
            for chunk in iter(lambda: response.read1(CHUNK), b""):
                digest.update(chunk)
                stream.write(chunk)
                received += len(chunk)
                if time.monotonic() > give_up:
                    raise OSError(f"still downloading after {deadline:g} s ({received} bytes received)")
        if expected and received != expected:
            raise OSError(f"connection closed after {received} of {expected} bytes")
        if record.sha256 and digest.hexdigest() != record.sha256:
            raise ChecksumError(
                f"Downloaded {record.file} from {record.url} has sha256 {digest.hexdigest()}, "
                f"expected {record.sha256}; the file was discarded"
            )
        os.replace(temp_name, target)
    except ChecksumError:
        Path(temp_name).unlink(missing_ok=True)
        raise
    except (OSError, ValueError, http.client.HTTPException) as error:
        Path(temp_name).unlink(missing_ok=True)
        raise WeightsUnavailableError(_offline_message(record, target, f"download failed: {error}")) from error
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def install_from(directory: Path) -> list[Path]:
    """Copy every file of `directory` that the manifest lists into the cache: the copy's sha256 is checked
    before it takes its name (`ChecksumError` otherwise, the installed file left as it was)."""
    installed = []
    for name in list_models():
        for info in model_versions(name):
            for record in info.files.values():
                source = Path(directory) / record.file
                if record.builtin or not source.is_file():
                    continue
                target = cache_dir() / record.file
                target.parent.mkdir(parents=True, exist_ok=True)
                with new_file(target) as temp:
                    shutil.copyfile(source, temp)
                    if record.sha256 and sha256_of(temp) != record.sha256:
                        raise ChecksumError(f"{source} does not match the manifest (expected sha256 {record.sha256} "
                                            f"for {record.file}): the file is corrupt, truncated or of another "
                                            "version; nothing was installed in its place")
                installed.append(target)
    return installed
