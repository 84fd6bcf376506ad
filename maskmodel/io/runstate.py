"""What maskmodel keeps inside a local output folder to know its own files: `OUT/.maskmodel/`.

- `lock`: held (`flock`, exclusive) by the run writing the folder; a second run is refused, naming the
  first. The kernel releases it when the run ends, however it ends.
- `run.json`: the folder's token; temporary files of this folder are named `.maskmodel-<token>-*`, so
  cleaning up after a killed run removes only what maskmodel was writing, never a file of an input.
- `configuration.json`: what the report's rows depend on (detector and its settings, classifier and its
  classes, box style, frame step); `--resume` with another configuration is refused, naming the difference.
- `written.jsonl`: every annotated-copy name this folder's runs were to write (one JSON string a line,
  appended before the work starts). `--overwrite` removes exactly those files, and a file under any other
  name is never replaced. The record is checked when it is read: a name that is not a relative path inside
  the folder (absolute, `..`, empty parts, the state folder itself) makes it damaged, and the run is
  refused before anything is removed.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path

from maskmodel.errors import UsageError
from maskmodel.runtime.files import write_file_atomic

STATE_FOLDER = ".maskmodel"
OWN_FILES = ("report.csv", "summary.json")  # besides the annotated copies


class RunState:
    """The state folder of a local output folder, locked for the lifetime of this object's run."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folder = self.root / STATE_FOLDER
        self._lock: int | None = None
        self.token = ""

    @staticmethod
    def exists_in(root: Path) -> bool:
        """Whether maskmodel has written into `root` before."""
        return (Path(root) / STATE_FOLDER / "run.json").is_file()

    def acquire(self) -> None:
        """Create the state folder if needed, take the lock and read (or make) the token."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        _refuse_symlink(self.folder)
        handle = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 4096, 0).decode("utf-8", "replace").strip() or "another run"
            os.close(handle)
            raise UsageError(f"{self.root} is being written by another run ({holder}); wait for it to end") from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"pid {os.getpid()}: {' '.join(sys.argv)}".encode(), 0)
        self._lock = handle
        record = self.folder / "run.json"
        if record.is_file():
            self.token = json.loads(record.read_text())["token"]
        else:
            self.token = secrets.token_hex(4)
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_file_atomic(record, json.dumps({"token": self.token, "created": created}).encode())

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def temp_prefix(self) -> str:
        """The name prefix of this folder's temporary files."""
        return f".maskmodel-{self.token}-"

    def check_configuration(self, configuration: dict, resume: bool) -> None:
        """Remember what the report's rows depend on (`configuration.json`); on `resume`, refuse
        (`UsageError`) a configuration that differs from the remembered one, naming each difference."""
        path = self.folder / "configuration.json"
        configuration = json.loads(json.dumps(configuration))  # tuples as lists, as read back
        if resume and path.is_file():
            try:
                before = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                before = None
            if not isinstance(before, dict):
                raise UsageError(f"{path} is damaged: choose a new --out, or --overwrite to start again")
            old, new = _flat(before), _flat(configuration)
            changed = [f"{key} {old.get(key, '(none)')} -> {new.get(key, '(none)')}" for key in sorted(set(old) | set(new))
                       if old.get(key) != new.get(key)]
            if changed:
                raise UsageError(f"--resume with other settings than the report in {self.root} was made with: "
                                 f"{'; '.join(changed)}. Use the same options, a new --out, or --overwrite")
            return
        write_file_atomic(path, json.dumps(configuration, indent=2, sort_keys=True).encode())

    def written(self) -> set[str]:
        """The annotated-copy names recorded so far (a torn last line, from a killed run, is ignored)."""
        journal = self.folder / "written.jsonl"
        if not journal.is_file():
            return set()
        names = set()
        for number, line in enumerate(journal.read_bytes().split(b"\n"), 1):
            try:
                name = json.loads(line)
            except ValueError:
                continue
            problem = recorded_name_problem(name)
            if problem:
                raise UsageError(f"{journal} is damaged (line {number}: {problem}); maskmodel removes nothing "
                                 "from this folder: choose a new --out")
            names.add(name)
        return names

    def record(self, names: list[str]) -> None:
        """Append names this run is about to write, before writing any of them."""
        if not names:
            return
        with open(self.folder / "written.jsonl", "ab") as stream:
            stream.write(b"".join(json.dumps(name).encode() + b"\n" for name in names))
            stream.flush()
            os.fsync(stream.fileno())

    def remove_previous_outputs(self) -> None:
        """For `--overwrite`: remove the previous runs' annotated copies, report and summary (regular
        files only; a symlink or folder put there is left alone), and forget them."""
        root = os.path.realpath(self.root)
        for name in sorted(self.written()) + list(OWN_FILES):
            target = self.root / name
            try:
                if (stat.S_ISREG(os.lstat(target).st_mode) and not _has_symlink_parent(self.root, name)
                        and os.path.commonpath([root, os.path.realpath(target.parent)]) == root):
                    target.unlink()
            except FileNotFoundError:
                continue
        (self.folder / "written.jsonl").unlink(missing_ok=True)

    def remove_temporary_files(self, skip: list[Path]) -> None:
        """Remove the temporary files a killed run of this folder left (never following symlinks, never
        inside `skip`, the input folders)."""
        skip_real = {Path(os.path.realpath(p)) for p in skip}
        for directory, subdirs, files in os.walk(self.root):
            subdirs[:] = [d for d in subdirs if Path(os.path.realpath(Path(directory) / d)) not in skip_real
                          and d != STATE_FOLDER]
            for name in files:
                path = Path(directory) / name
                if name.startswith(self.temp_prefix) and stat.S_ISREG(os.lstat(path).st_mode):
                    path.unlink()


def _flat(data: dict, prefix: str = "") -> dict:
    """`{"a": {"b": 1}}` as `{"a.b": 1}`, values as JSON text."""
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value)
    return flat


def recorded_name_problem(name: object) -> str | None:
    """Why `name` cannot be a name of `written.jsonl` (a relative POSIX path inside the output folder,
    outside its state folder), or `None` when it can."""
    if not isinstance(name, str):
        return f"{name!r} is not a file name"
    parts = name.split("/")
    if not name or "\0" in name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return f"{name!r} is not a relative path inside the output folder"
    if parts[0] == STATE_FOLDER:
        return f"{name!r} is inside {STATE_FOLDER}/"
    return None


def _refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise UsageError(f"{path} is a symlink: maskmodel never writes through one")


def _has_symlink_parent(root: Path, name: str) -> bool:
    parent = root
    for part in name.split("/")[:-1]:
        parent = parent / part
        if parent.is_symlink():
            return True
    return False
