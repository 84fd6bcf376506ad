"""What maskmodel keeps inside a local output folder to know its own files: `OUT/.maskmodel/`.

Every file here is opened through `maskmodel.io.ownfiles`: a symlink, a hard link, a FIFO or a device
under one of these names (or under `report.csv`, `summary.json`) refuses the run (exit 2), naming it.

- `lock`: held (`flock`, exclusive) by the run writing the folder; a second run is refused, naming the
  first. Taken before the folder is checked; the kernel releases it however the run ends, and the file is
  removed when the run ends.
- `run.json`: the folder's token; temporary files of this folder are named `.maskmodel-<token>-*`, so
  cleaning up after a killed run removes only what maskmodel was writing, never a file of an input.
- `configuration.json`: every option the outputs depend on (inputs, detector and its settings,
  classifier and its classes, box style, drawing, blur, format, frame step, codec); `--resume` with
  another configuration is refused, naming the difference.
- `written.jsonl`: every name this folder's runs were to write (one JSON string a line, appended before
  the work starts), then, once a file is written, its identity (`{"name": ..., "id": [device, inode,
  size, mtime_ns]}`). A recorded name is maskmodel's only while its file is the one it wrote (or there is
  none) and no folder on its way is another run's output folder: only those are replaced or removed by
  `--resume` and `--overwrite`, a file under any other name never. The record is checked when it is
  read: a torn last line is cut off, and a name that is not a relative path inside the folder (absolute,
  `..`, empty parts, the state folder itself) or an identity that is not four integers makes it damaged,
  and the run is refused before anything is removed.
- `overwriting`: present while an `--overwrite` removes the earlier results; the earlier configuration
  and record stay until the removal is complete, and any later run of the folder finishes it first.
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
from maskmodel.io.layout import STATE_FOLDER, file_identity, in_another_run
from maskmodel.io.ownfiles import (check_own_file, open_own_file, read_own_file, refuse, remove_own_file,
                                   replace_own_file)
from maskmodel.runtime.files import write_all

OWN_FILES = ("report.csv", "summary.json")  # besides the annotated copies
JOURNAL, OVERWRITING = "written.jsonl", "overwriting"
STATE_FILES = ("lock", "run.json", "configuration.json", JOURNAL, OVERWRITING)


class RunState:
    """The state folder of a local output folder, locked for the lifetime of this object's run.

    Every file in it is opened through `maskmodel.io.ownfiles` (regular files with one name only, new
    content under a fresh name then renamed), so whatever was planted there is refused, never written
    through. The order of a run: `acquire` (lock), the caller's checks, `start` (token), the work,
    `release` (the lock file is removed).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folder = self.root / STATE_FOLDER
        self._lock: int | None = None
        self._made: list[Path] = []  # folders this run created (removed again when the run leaves them empty)
        self.token = ""

    @staticmethod
    def exists_in(root: Path) -> bool:
        """Whether maskmodel has written into `root` before."""
        return os.path.lexists(Path(root) / STATE_FOLDER / "run.json")

    def acquire(self) -> None:
        """Create the state folder if needed, take the lock, check every state file and read the token
        (if the folder has one). Raises `UsageError` when another run holds the lock or a state file is
        not a regular file of its own."""
        missing = [folder for folder in (*reversed(self.root.parents), self.root) if not os.path.lexists(folder)]
        for folder in (*missing, self.folder):
            try:
                os.mkdir(folder)
                self._made.append(folder)
            except FileExistsError:
                pass
        info = os.lstat(self.folder)
        if not stat.S_ISDIR(info.st_mode):
            raise refuse(self.folder, "a symlink" if stat.S_ISLNK(info.st_mode) else "not a folder")
        self._lock = self._take_lock()
        for name in STATE_FILES:
            check_own_file(self.folder / name)
        for name in OWN_FILES:
            check_own_file(self.root / name)
        data = read_own_file(self.folder / "run.json", 4096)
        if data is not None:
            try:
                self.token = json.loads(data)["token"]
            except (ValueError, KeyError, TypeError):
                self.token = ""
            if not (isinstance(self.token, str) and self.token.isalnum() and len(self.token) <= 32):
                raise UsageError(f"{self.folder / 'run.json'} is damaged: choose a new --out")

    def _take_lock(self) -> int:
        """The descriptor of the locked `lock` file (made if missing; never a link, never truncated before
        the check). A lock file removed and made again by a run that ended meanwhile is taken again."""
        import fcntl

        path = self.folder / "lock"
        for _ in range(10):
            handle = open_own_file(path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(handle, 4096, 0).decode("utf-8", "replace").strip() or "another run"
                os.close(handle)
                raise UsageError(f"{self.root} is being written by another run ({holder}); wait for it to end") from None
            mine = os.fstat(handle)
            try:
                named = os.lstat(path)
            except FileNotFoundError:
                named = None
            if named is not None and (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino):
                os.ftruncate(handle, 0)
                os.pwrite(handle, f"pid {os.getpid()}: {' '.join(sys.argv)}".encode(), 0)
                return handle
            os.close(handle)  # the run that held it removed it: lock the new one
        raise UsageError(f"{path} keeps changing: another program is using {self.root}")

    def start(self) -> None:
        """Make the folder's token if it has none (after the caller's checks passed)."""
        if not self.token:
            self.token = secrets.token_hex(4)
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self._replace("run.json", json.dumps({"token": self.token, "created": created}).encode())

    def release(self) -> None:
        """Remove the lock file (when it is still this run's) and let go of it; folders this run made and
        left empty are removed too."""
        if self._lock is not None:
            path = self.folder / "lock"
            try:
                mine, named = os.fstat(self._lock), os.lstat(path)
                if (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino):
                    os.unlink(path)
            except FileNotFoundError:
                pass
            os.close(self._lock)
            self._lock = None
        for folder in reversed(self._made):
            try:
                os.rmdir(folder)
            except OSError:
                break

    @property
    def temp_prefix(self) -> str:
        """The name prefix of this folder's temporary files."""
        return f".maskmodel-{self.token}-"

    def _replace(self, name: str, data: bytes) -> None:
        replace_own_file(self.folder / name, data, self.temp_prefix if self.token else ".maskmodel-tmp-")

    def check_configuration(self, configuration: dict, resume: bool) -> None:
        """Remember what the outputs depend on (`configuration.json`); on `resume`, refuse (`UsageError`) a
        configuration that differs from the remembered one, naming each difference.

        `configuration["inputs"]` maps report-path prefixes to the inputs they stand for: a resumed run may
        name fewer or more inputs, but a prefix may not stand for another input, nor an input get
        another prefix (its photos would be reported twice, or skipped as another's)."""
        path = self.folder / "configuration.json"
        configuration = json.loads(json.dumps(configuration))  # tuples as lists, as read back
        data = read_own_file(path, 1 << 20) if resume else None
        if data is not None:
            try:
                before = json.loads(data.decode("utf-8"))
            except ValueError:
                before = None
            if not isinstance(before, dict) or not isinstance(before.get("inputs", {}), dict):
                raise UsageError(f"{path} is damaged: choose a new --out, or --overwrite to start again")
            old_inputs, new_inputs = before.pop("inputs", {}), configuration.pop("inputs", {})
            old, new = _flat(before), _flat(configuration)
            changed = [f"{key} {old.get(key, '(none)')} -> {new.get(key, '(none)')}" for key in sorted(set(old) | set(new))
                       if old.get(key) != new.get(key)]
            changed += _input_changes(old_inputs, new_inputs)
            if changed:
                raise UsageError(f"--resume with other settings than the report in {self.root} was made with: "
                                 f"{'; '.join(changed)}. Use the same options, a new --out, or --overwrite")
            configuration = {**before, "inputs": {**old_inputs, **new_inputs}}
        self._replace("configuration.json", json.dumps(configuration, indent=2, sort_keys=True).encode())

    def written(self) -> dict[str, set[Identity]]:
        """The names recorded so far, each with the identities of the files written under it (none: not
        written yet; more than one: written again, or a run killed between recording and renaming). A torn last line (a killed run, a full disk) is cut off the record here, so nothing
        is ever appended to it; any other damage refuses the folder (`UsageError`)."""
        journal = self.folder / JOURNAL
        data = read_own_file(journal)
        if not data:
            return {}
        whole, _, torn = data.rpartition(b"\n")
        if torn:  # the names of a torn append were never written: recording comes first
            handle = open_own_file(journal, os.O_WRONLY)
            try:
                os.ftruncate(handle, len(data) - len(torn))
            finally:
                os.close(handle)
        names: dict[str, set[Identity]] = {}
        for number, line in enumerate(whole.split(b"\n") if whole else [], 1):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = line
            name, identity = (entry.get("name"), entry.get("id")) if isinstance(entry, dict) else (entry, None)
            problem = recorded_name_problem(name) or _identity_problem(identity)
            if problem:
                raise UsageError(f"{journal} is damaged (line {number}: {problem}); maskmodel removes nothing "
                                 "from this folder: choose a new --out")
            names.setdefault(name, set()).update([tuple(identity)] if identity is not None else [])
        return names

    def ours(self) -> set[str]:
        """The recorded names maskmodel may write again or remove (`_is_ours`)."""
        return {name for name, identities in self.written().items() if self._is_ours(name, identities)}

    def _is_ours(self, name: str, identities: set[Identity]) -> bool:
        """Whether the recorded `name` is still maskmodel's: no folder on its way is another run's output
        folder, and there is no file under it or the file is one written there (`identities`)."""
        if in_another_run(self.root, name):
            return False
        try:
            info = os.lstat(self.root / name)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and _identity(info) in identities

    def record(self, names: list[str]) -> None:
        """Append names this run is about to write, before writing any of them."""
        _append(self.folder / JOURNAL, names)

    def overwrite_pending(self) -> bool:
        """Whether an `--overwrite` began here and did not finish removing the earlier results."""
        return os.path.lexists(self.folder / OVERWRITING)

    def begin_overwrite(self) -> None:
        """For `--overwrite` (or a run after a killed one): mark the removal as begun, then remove the
        previous runs' annotated copies, exports, report and summary (regular files inside the folder
        only; a symlink or folder put there is left alone), then forget them and their configuration.
        Until `end_overwrite`, every later run of this folder finishes the removal first."""
        written = self.written()  # a damaged record refuses before anything is removed
        names = list(OWN_FILES) + sorted(name for name, identities in written.items() if self._is_ours(name, identities))
        self._replace(OVERWRITING, b"an --overwrite is removing the earlier results\n")
        root = os.path.realpath(self.root)
        for name in names:
            target = self.root / name
            try:
                if (stat.S_ISREG(os.lstat(target).st_mode) and not _has_symlink_parent(self.root, name)
                        and os.path.commonpath([root, os.path.realpath(target.parent)]) == root):
                    target.unlink()
            except FileNotFoundError:
                continue
        for name in (JOURNAL, "configuration.json"):
            remove_own_file(self.folder / name)

    def end_overwrite(self) -> None:
        """The removal of `begin_overwrite` is complete and the new configuration recorded."""
        remove_own_file(self.folder / OVERWRITING)

    def remove_temporary_files(self, skip: list[Path]) -> None:
        """Remove the temporary files a killed run of this folder left (never following symlinks, never
        inside `skip`, the input folders)."""
        skip_ids = {file_identity(p) for p in skip} - {None}
        for directory, subdirs, files in os.walk(self.root):
            subdirs[:] = [d for d in subdirs if file_identity(Path(directory) / d) not in skip_ids and d != STATE_FOLDER]
            for name in files:
                path = Path(directory) / name
                if name.startswith(self.temp_prefix) and stat.S_ISREG(os.lstat(path).st_mode):
                    path.unlink()
        for name in os.listdir(self.folder):
            if name.startswith((self.temp_prefix, ".maskmodel-tmp-")):
                remove_own_file(self.folder / name)


Identity = tuple[int, int, int, int]  # device, inode, size, mtime in nanoseconds


def _identity(info: os.stat_result) -> Identity:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def record_identity(root: Path, name: str, info: os.stat_result) -> None:
    """Append to the record of the output folder `root` the identity of the file `info` describes, which
    is about to be renamed to `name` (so the record is never behind the folder: a recorded name is ours
    only while its file is this one). Worker processes call it too (`LocalFolder.on_publish`)."""
    if name not in OWN_FILES:  # the report and summary are checked as the state files are
        _append(Path(root) / STATE_FOLDER / JOURNAL, [{"name": name, "id": list(_identity(info))}], sync=False)


def _append(journal: Path, entries: list, sync: bool = True) -> None:
    """Append `entries` to the record, one JSON value a line, each call in one `O_APPEND` write (the lines
    of several processes never mix); a failed append is cut back. An identity lost (no `sync`) only makes
    a file not ours."""
    if not entries:
        return
    handle = open_own_file(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        end = os.fstat(handle).st_size
        try:
            write_all(handle, b"".join(json.dumps(entry).encode() + b"\n" for entry in entries), journal)
            if sync:
                os.fsync(handle)
        except OSError:
            os.ftruncate(handle, end)
            raise
    finally:
        os.close(handle)


def _identity_problem(identity: object) -> str | None:
    """Why `identity` cannot be a file's identity in `written.jsonl` (four integers), or `None`."""
    if identity is None or (isinstance(identity, list) and len(identity) == 4
                            and all(type(part) is int for part in identity)):
        return None
    return f"{identity!r} is not a file identity"


def _input_changes(old: dict, new: dict) -> list[str]:
    """The prefixes that stand for another input now, and the inputs that got another prefix."""
    changed = [f"inputs: {prefix} was {old[prefix]}, now {new[prefix]}" for prefix in sorted(set(old) & set(new))
               if old[prefix] != new[prefix]]
    was = {location: prefix for prefix, location in old.items()}
    changed += [f"inputs: {location} was reported as {was[location]}, now as {prefix}"
                for prefix, location in sorted(new.items()) if was.get(location, prefix) != prefix]
    return changed


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


def _has_symlink_parent(root: Path, name: str) -> bool:
    parent = root
    for part in name.split("/")[:-1]:
        parent = parent / part
        if parent.is_symlink():
            return True
    return False
