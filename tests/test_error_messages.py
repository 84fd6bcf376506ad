"""CLI error messages are sentences naming the file and the remedy; the exception's class name only
with `--verbose` (issue 37). The errors are real ones: a write to /dev/full, a missing file."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from maskmodel.cli.errors import describe
from maskmodel.errors import UsageError


def _raised(action) -> BaseException:
    try:
        action()
    except BaseException as error:  # noqa: BLE001 - the error is what is tested
        return error
    raise AssertionError("expected an error")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) for a real ENOSPC")
def test_a_full_disk_names_the_output_and_the_remedy():
    def write():
        with open("/dev/full", "wb") as stream:
            stream.write(b"x")

    error = _raised(write)
    assert error.errno == errno.ENOSPC
    message = describe(error, path="annotated")
    assert message == ("annotated: No space left on device; free some space or choose another --out, "
                       "then run the same command with --resume")
    assert describe(error, verbose=True, path="annotated").startswith("OSError: annotated: No space left")


def test_a_missing_file_is_named(tmp_path):
    error = _raised(lambda: open(tmp_path / "gone.png", "rb"))
    assert describe(error) == f"{tmp_path / 'gone.png'}: No such file or directory; check the path"


def test_library_errors_keep_their_message_and_lose_their_class_name():
    assert describe(UsageError("photos/ is the output folder")) == "photos/ is the output folder"
    assert describe(UsageError("x"), verbose=True) == "UsageError: x"
