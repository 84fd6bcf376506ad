"""`annotate --out URI`: the same report and annotated copies on a remote filesystem as in a local
folder. S3 through pyarrow (a real S3-protocol server on 127.0.0.1), FTP through fsspec (pyftpdlib)."""

import csv
import io
import os
import shutil
import threading

import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main
from helpers import crowd_images, upload_tree
from maskmodel.io.storage import RemoteFolder, open_folder
from maskmodel.outputs.report import PARTS_FOLDER, ReportMirror, ReportWriter
from test_video import FRAMES, SIZE, frame_count, make_clip

pafs = pytest.importorskip("pyarrow.fs")
NOT_UTF8 = os.fsdecode(b"caf\xe9.png")  # a name a local folder holds and a remote one cannot


def rows(text: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text.decode("utf-8"), newline="")))


def same_rows_but_the_non_utf8_name(remote: list[dict], local: list[dict]) -> bool:
    """The remote report equals the local one, except that the non-UTF-8 name is an error row."""
    odd = r"caf\xe9.png"
    [error] = [row for row in remote if row["path"] == odd]
    assert error["status"] == "error" and "not valid UTF-8" in error["message"]
    return [r for r in remote if r["path"] != odd] == [r for r in local if r["path"] != odd]


def s3_files(uri: str) -> dict[str, bytes]:
    """Every file under `uri`, read with pyarrow directly."""
    filesystem, root = pafs.FileSystem.from_uri(uri)
    infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return {i.path[len(root) + 1:]: filesystem.open_input_stream(i.path).read()
            for i in infos if i.type == pafs.FileType.File}


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    (folder / "street corner").mkdir(parents=True)
    for photo in crowd_images(3):
        shutil.copy(photo, folder / "street corner" / photo.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    shutil.copy(crowd_images(1)[0], folder / NOT_UTF8)
    make_clip(folder / "clip.avi")
    return folder


@pytest.fixture
def local_run(photos, tmp_path):
    out = tmp_path / "local"
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(out), "-q"])
    assert result.exit_code == 1, result.output  # the broken file
    return out


def test_s3_output_matches_local_output(photos, local_run, s3_uri, tmp_path):
    uri = s3_uri("run-local-engine")
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", uri, "-q", "--jobs", "2"])
    assert result.exit_code == 1, result.output
    files = s3_files(uri)
    assert same_rows_but_the_non_utf8_name(rows(files.pop("report.csv")), rows((local_run / "report.csv").read_bytes()))
    assert "summary.json" in files.keys() and files.pop("summary.json")
    assert files.pop("report.html").startswith(b"<!DOCTYPE html>")  # the run's page, uploaded too
    (tmp_path / "clip.avi").write_bytes(files.pop("clip.avi"))
    assert frame_count(tmp_path / "clip.avi") == (FRAMES, SIZE)
    expected = {p.relative_to(local_run).as_posix(): p.read_bytes() for p in local_run.rglob("*.png")
                if p.name != NOT_UTF8}
    assert files == expected  # the annotated copies, nothing else (no parts, no temporary files)


def test_s3_input_gives_the_report_of_the_same_tree_on_disk(photos, s3_uri, tmp_path):
    (photos / NOT_UTF8).unlink()  # S3 keys are UTF-8
    shutil.copy(crowd_images(2)[1], photos / "z.png")  # listed before the subfolders, as on disk
    (photos / "a").mkdir()
    shutil.copy(crowd_images(3)[2], photos / "a" / "x.png")
    (photos / ".hidden").mkdir()
    shutil.copy(crowd_images(1)[0], photos / ".hidden" / "skipped.png")
    uri = s3_uri("input")
    upload_tree(photos, uri)
    on_disk = CliRunner().invoke(main, ["annotate", str(photos), "--out", str(tmp_path / "disk"), "-q"])
    remote = CliRunner().invoke(main, ["annotate", uri, "--out", str(tmp_path / "s3"), "-q", "--jobs", "2"])
    assert on_disk.exit_code == remote.exit_code == 1, remote.output  # broken.jpg
    assert (tmp_path / "s3" / "report.csv").read_bytes() == (tmp_path / "disk" / "report.csv").read_bytes()
    copies = {p.relative_to(tmp_path / "disk"): p.read_bytes() for p in (tmp_path / "disk").rglob("*.png")}
    assert copies and all((tmp_path / "s3" / name).read_bytes() == data for name, data in copies.items())
    assert frame_count(tmp_path / "s3" / "clip.avi") == (FRAMES, SIZE)
    one_file = uri.replace("/input?", "/input/z.png?")
    single = CliRunner().invoke(main, ["annotate", one_file, "--out", str(tmp_path / "one"), "-q"])
    assert single.exit_code == 0, single.output
    assert (tmp_path / "one" / "z.png").read_bytes() == (tmp_path / "disk" / "z.png").read_bytes()
    missing = CliRunner().invoke(main, ["annotate", uri.replace("/input?", "/nothing-here?"), "--out",
                                        str(tmp_path / "none"), "-q"])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_s3_output_refuses_a_non_empty_folder_and_resumes(photos, tmp_path, s3_uri):
    uri = s3_uri("run-resume")
    growing = tmp_path / "growing"
    growing.mkdir()
    shutil.copy(next((photos / "street corner").iterdir()), growing)
    assert CliRunner().invoke(main, ["annotate", str(growing), "--out", uri, "-q"]).exit_code == 0
    again = CliRunner().invoke(main, ["annotate", str(growing), "--out", uri, "-q"])
    assert again.exit_code == 2 and "not empty" in again.output
    shutil.copytree(photos, growing, dirs_exist_ok=True)
    resumed = CliRunner().invoke(main, ["annotate", str(growing), "--out", uri, "-q", "--resume"])
    assert resumed.exit_code == 1, resumed.output
    in_one_go = tmp_path / "in-one-go"
    CliRunner().invoke(main, ["annotate", str(growing), "--out", str(in_one_go), "-q"])
    order = lambda row: (row["path"], row["face"])  # noqa: E731  (resume appends: compare as sets of rows)
    expected = sorted(rows((in_one_go / "report.csv").read_bytes()), key=order)
    assert same_rows_but_the_non_utf8_name(sorted(rows(s3_files(uri)["report.csv"]), key=order), expected)


def test_report_parts_survive_a_killed_driver(tmp_path, s3_uri):
    """Parts uploaded during a run are restored by the next run's mirror, in order."""
    folder = open_folder(s3_uri("run-parts"))
    local = tmp_path / "report.csv"
    mirror = ReportMirror(folder, local, "report.csv", interval=0)
    writer = ReportWriter(local, append=False)
    for index in range(3):
        writer.write([{"path": f"image{index}.jpg", "status": "no_face"}])
        mirror.sync()
    writer.close()
    assert len(folder.list_files(PARTS_FOLDER)) == 3 and folder.read_bytes("report.csv") is None
    restored = tmp_path / "restored.csv"
    ReportMirror(folder, restored, "report.csv").restore()  # the next run, after a kill: no publish happened
    assert restored.read_bytes() == local.read_bytes()
    mirror.publish()
    assert folder.list_files(PARTS_FOLDER) == [] and folder.read_bytes("report.csv") == local.read_bytes()


@pytest.fixture
def ftp_uri(tmp_path):
    """A real FTP server on 127.0.0.1 (pyftpdlib) serving a local folder; fsspec opens ftp:// URIs."""
    servers = pytest.importorskip("pyftpdlib.servers")
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler

    served = tmp_path / "ftp-root"
    served.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("maskmodel", "secret", str(served), perm="elradfmwMT")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    server = servers.FTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    yield f"ftp://maskmodel:secret@127.0.0.1:{server.address[1]}/run", served / "run"
    server.close_all()


def test_ftp_output_through_fsspec(photos, local_run, ftp_uri):
    uri, served = ftp_uri
    assert isinstance(open_folder(uri), RemoteFolder)
    result = CliRunner().invoke(main, ["annotate", str(photos), "--out", uri, "-q"])
    assert result.exit_code == 1, result.output
    assert same_rows_but_the_non_utf8_name(rows((served / "report.csv").read_bytes()),
                                           rows((local_run / "report.csv").read_bytes()))
    written = {p.relative_to(served).as_posix(): p.read_bytes() for p in served.rglob("*") if p.is_file()}
    expected = {p.relative_to(local_run).as_posix(): p.read_bytes() for p in local_run.rglob("*")
                if p.is_file() and p.name != NOT_UTF8 and ".maskmodel" not in p.parts}  # local run state
    assert written.keys() == expected.keys()  # renamed from temporary names, none left over
    assert all(written[name] == expected[name] for name in written if name.endswith(".png"))
    assert frame_count(served / "clip.avi") == (FRAMES, SIZE)
    assert "secret" not in (served / "summary.json").read_text()  # the URI is recorded without its password
    stale = served / "street corner" / ".tmp-1234abcd-left-by-a-killed-run.png"
    stale.write_bytes(b"half an image")
    resumed = CliRunner().invoke(main, ["annotate", str(photos), "--out", uri, "-q", "--resume"])
    assert resumed.exit_code == 1, resumed.output  # nothing left to do (the report keeps its error row)
    assert not stale.exists()
