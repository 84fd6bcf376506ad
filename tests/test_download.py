"""Real downloads from a local HTTP server on 127.0.0.1 serving the shared detector files."""

import http.server
import subprocess
import sys
import threading
import time
from functools import partial

import pytest

import maskmodel
from helpers import FACE_MODELS
from maskmodel import zoo

YUNET = "face_detection_yunet_2026may.onnx"


class Handler(http.server.SimpleHTTPRequestHandler):
    mode = "ok"  # ok | corrupt | die | slow | stall | trickle

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = (FACE_MODELS / self.path.lstrip("/")).read_bytes()
        if self.mode == "corrupt":
            data = data[:-10] + b"0123456789"
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.mode in ("stall", "trickle"):  # a stuck mirror: nothing more, or a byte now and then
            try:
                for index in range(len(data) if self.mode == "trickle" else 0):
                    self.wfile.write(data[index:index + 1])
                    self.wfile.flush()
                    time.sleep(0.2)
            except BrokenPipeError:  # the client gave up, as it should
                return
            time.sleep(30)
            return
        if self.mode == "die":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        for start in range(0, len(data), 32768):
            self.wfile.write(data[start : start + 32768])
            if self.mode == "slow":
                time.sleep(0.02)


@pytest.fixture()
def server(monkeypatch, tmp_path):
    def start(mode):
        handler = type("H", (Handler,), {"mode": mode})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(FACE_MODELS)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        monkeypatch.setenv("MASKMODEL_BASE_URL", f"http://127.0.0.1:{httpd.server_port}")
        monkeypatch.setenv("MASKMODEL_HOME", str(tmp_path / "cache"))
        return tmp_path / "cache"

    servers = []
    yield start
    for httpd in servers:
        httpd.shutdown()


def test_download_verifies_and_caches(server):
    cache = server("ok")
    path = maskmodel.weights_path("yunet-2026may")
    assert path == cache / YUNET and zoo.sha256_of(path) == zoo.model_info("yunet-2026may").files["onnx"].sha256
    assert [p.name for p in cache.iterdir()] == [YUNET]


def test_corrupt_download_is_rejected_and_cache_left_clean(server):
    cache = server("corrupt")
    with pytest.raises(zoo.ChecksumError, match="expected ebafce4e"):
        maskmodel.weights_path("yunet-2026may")
    assert list(cache.iterdir()) == []


def test_server_dying_mid_transfer(server):
    cache = server("die")
    with pytest.raises(zoo.WeightsUnavailableError, match="download failed"):
        maskmodel.weights_path("yunet-2026may")
    assert list(cache.iterdir()) == []


def test_two_processes_download_the_same_file(server):
    cache = server("slow")
    code = "import maskmodel; print(maskmodel.weights_path('opencv-ssd-uint8@1.0.0', format='pb'))"
    workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=120)[0].strip() for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert outputs[0] == outputs[1] == str(cache / "opencv_face_detector_uint8.pb")
    assert [p.name for p in cache.iterdir()] == ["opencv_face_detector_uint8.pb"]  # no partial files left
    assert zoo.sha256_of(cache / "opencv_face_detector_uint8.pb") == zoo.weights_file("opencv-ssd-uint8@1.0.0", format="pb").sha256


def test_models_download_cli(server):
    from click.testing import CliRunner

    from maskmodel.cli.main import main

    cache = server("ok")
    result = CliRunner().invoke(main, ["models", "download", "opencv-ssd-uint8@1.0.0"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in cache.iterdir()) == ["opencv_face_detector.pbtxt", "opencv_face_detector_uint8.pb"]
    verify = CliRunner().invoke(main, ["models", "verify"])
    assert verify.exit_code == 0 and "BAD" not in verify.output
    (cache / "opencv_face_detector.pbtxt").write_text("tampered")
    assert CliRunner().invoke(main, ["models", "verify"]).exit_code == 1


@pytest.mark.parametrize("mode, reason", [("stall", "timed out"), ("trickle", "still downloading after 2 s")])
def test_a_stuck_mirror_is_given_up(server, mode, reason):
    cache = server(mode)
    record = zoo.weights_file("yunet-2026may", format="onnx")
    started = time.monotonic()
    with pytest.raises(zoo.WeightsUnavailableError, match=reason):
        zoo.download_file(record, cache / YUNET, timeout=1.0, deadline=2.0)
    assert time.monotonic() - started < 10
    assert list(cache.iterdir()) == []
