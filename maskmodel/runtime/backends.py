"""One runtime layer for every ONNX network (the mask classifiers, CenterFace, the SSD): `open_network`
prepares a model for a backend and returns a `Network` whose `run(blob)` gives its outputs.

Backends:
    `opencv`: OpenCV's `cv2.dnn`, always there (the promise that the ONNX files run with OpenCV + NumPy
        only); float32.
    `onnxruntime`: ONNX Runtime, float32; the model's weights are first dropped from its graph inputs
        (old exporters list them there, and ONNX Runtime then skips constant folding).
    `openvino`: OpenVINO's CPU plugin, in bfloat16 where the CPU has it (its `OPTIMIZATION_CAPABILITIES`
        lists `BF16`: AVX512-BF16 or AMX), float32 elsewhere; dynamic input sizes compiled once.
    `auto`: the fastest installed, by the measurements in docs/benchmarks.md (`python -m bench.runtimes`):
        OpenVINO where the CPU has bf16 (CenterFace 1.7-2x, the classifier 1.5-2x faster than ONNX
        Runtime float32); else ONNX Runtime (faster than OpenVINO float32 for CenterFace); else OpenVINO
        float32 (faster than `cv2.dnn` for both); else OpenCV.

Precision: `auto` (bf16 on OpenVINO where the CPU has it, else fp32), `fp32` (any backend), `bf16`
(OpenVINO on a CPU with bf16 only).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from maskmodel.runtime.files import cache_dir, file_kind
from maskmodel.runtime.onnxproto import external_data_locations, key, without_initializer_inputs
from maskmodel.runtime.opencv import require

BACKENDS = ("auto", "opencv", "onnxruntime", "openvino")
PRECISIONS = ("auto", "fp32", "bf16")
DNN_ENGINES = ("auto", "new", "classic")
_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


def onnxruntime_available() -> bool:
    """Whether the optional `onnxruntime` package can be imported."""
    return importlib.util.find_spec("onnxruntime") is not None


def openvino_available() -> bool:
    """Whether the `openvino` package can be imported."""
    return importlib.util.find_spec("openvino") is not None


def available(backend: str) -> bool:
    """Whether `backend` (`"opencv"`, `"onnxruntime"`, `"openvino"`) can run here."""
    return backend == "opencv" or (backend in _PACKAGES and importlib.util.find_spec(_PACKAGES[backend]) is not None)


@functools.cache
def _openvino_core():
    """OpenVINO's `Core`. The package's telemetry writes `intel/` (a client id and usage counts) into the home
    folder as `openvino` is imported: HOME points at maskmodel's cache folder for that import, so the user's
    home stays as it was (`<cache>/openvino-home/intel`)."""
    home = cache_dir() / "openvino-home"
    saved = os.environ.get("HOME")
    try:
        home.mkdir(parents=True, exist_ok=True)
        os.environ["HOME"] = str(home)
    except OSError:  # no cache folder: the import as it is
        pass
    try:
        import openvino
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved
    return openvino.Core()


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether OpenVINO can run bfloat16 on this CPU (`BF16` among its optimization capabilities: AVX512-BF16
    or AMX); False without OpenVINO."""
    if not openvino_available():
        return False
    try:
        return "BF16" in _openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeError:  # no CPU plugin
        return False


def resolve_backend(backend: str) -> str:
    """The backend `backend` names; `"auto"` is the fastest installed (see the module docstring).

    Raises:
        ValueError: `backend` is not one of `BACKENDS`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"Expected backend in {BACKENDS}. Received: backend={backend!r}")
    if backend != "auto":
        return backend
    if openvino_available() and cpu_has_bf16():
        return "openvino"
    if onnxruntime_available():
        return "onnxruntime"
    return "openvino" if openvino_available() else "opencv"


def resolve_precision(backend: str, precision: str = "auto") -> str:
    """The precision a network runs in on `backend` (a resolved backend name).

    Raises:
        ValueError: an unknown precision, or bf16 where it cannot run (not OpenVINO, or a CPU without it).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Expected precision in {PRECISIONS}. Received: precision={precision!r}")
    bf16 = backend == "openvino" and cpu_has_bf16()
    if precision == "bf16" and not bf16:
        raise ValueError("precision='bf16' needs the openvino backend on a CPU with bf16 (AVX512-BF16 or AMX). "
                         f"Received: backend={backend!r}" + ("" if backend != "openvino" else ", a CPU without bf16"))
    return "bf16" if precision == "bf16" or (precision == "auto" and bf16) else "fp32"


def read_onnx(model: str | os.PathLike | bytes, engine: str = "auto", label: str | None = None) -> cv2.dnn.Net:
    """`cv2.dnn.readNetFromONNX` (of a file or of the model's bytes) with an engine by name: `auto`
    (OpenCV's choice), or on OpenCV 5 `new` / `classic`. `label` names the model in errors."""
    if engine not in DNN_ENGINES:
        raise ValueError(f"Expected engine in {DNN_ENGINES}. Received: engine={engine!r}")
    source = np.frombuffer(model, np.uint8) if isinstance(model, bytes) else str(model)
    try:
        if engine == "auto":
            return cv2.dnn.readNetFromONNX(source)
        require("dnn_engines", f"DNN engine {engine!r}")
        return cv2.dnn.readNetFromONNX(source, getattr(cv2.dnn, f"ENGINE_{engine.upper()}"))
    except cv2.error as error:
        raise ValueError(f"cannot load ONNX model {label or _label(model)}: {error.msg.strip()}") from error


def _label(model: str | os.PathLike | bytes) -> str:
    return "(from memory)" if isinstance(model, bytes) else repr(str(model))


class Network:
    """An ONNX network on one backend: `run(blob)` gives the outputs (float32 arrays, in the order of
    `outputs`, or the model's). Made by `open_network`."""

    backend: str = ""
    precision: str = "fp32"

    def run(self, blob: np.ndarray) -> list[np.ndarray]:  # pragma: no cover - each backend has its own
        raise NotImplementedError


class OpenCVNetwork(Network):
    """`cv2.dnn`. On OpenCV 4, a net whose input shape changes gives wrong outputs from then on (CenterFace on
    4.12: 84 boxes instead of 23 on a crowd photo after one photo of another size), so there each input shape
    gets a net of its own (the last `MAX_SHAPES` kept); OpenCV 5 reshapes one net correctly."""

    backend = "opencv"
    NET_PER_SHAPE = int(cv2.__version__.split(".")[0]) < 5
    MAX_SHAPES = 8

    def __init__(self, model: bytes, label: str, outputs: Sequence[str] | None, engine: str) -> None:
        self._model, self._label, self._engine = model, label, engine
        self._spare: cv2.dnn.Net | None = read_onnx(model, engine, label)  # read now: a bad model fails at load
        self._nets: dict[tuple[int, ...] | None, cv2.dnn.Net] = {}
        self._outputs = list(outputs) if outputs else None

    def _net(self, shape: tuple[int, ...]) -> cv2.dnn.Net:
        key = shape if self.NET_PER_SHAPE else None
        if key not in self._nets:
            if len(self._nets) >= self.MAX_SHAPES:
                self._nets.pop(next(iter(self._nets)))
            net, self._spare = self._spare or read_onnx(self._model, self._engine, self._label), None
            self._nets[key] = net
        return self._nets[key]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        net = self._net(blob.shape)
        net.setInput(blob)
        if self._outputs:
            return list(net.forward(self._outputs))
        return [net.forward()]


class OnnxRuntimeNetwork(Network):
    backend = "onnxruntime"

    def __init__(self, model: bytes, label: str, outputs: Sequence[str] | None, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: old graphs draw harmless warnings
        try:
            self._session = onnxruntime.InferenceSession(model, options,
                                                         providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(f"cannot load ONNX model {label}: {error}") from error
        self._input = self._session.get_inputs()[0].name
        self._outputs = list(outputs) if outputs else None

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._outputs, {self._input: blob})


class OpenVINONetwork(Network):
    """OpenVINO on the CPU. With `static_shapes`, every input shape gets its own static-shape compiled model
    (the classifier ran 2x faster so than with a dynamic batch dimension; the last `MAX_SHAPES` kept);
    without, one model with the file's dynamic dimensions (CenterFace: as fast as static shapes, and photos
    differ in size).

    The model is read (and so checked) at once, and compiled at its first run with a new shape (the
    classifier's dry run compiles its one shape; CenterFace compiles at its first photo). Compiled models
    are kept in OpenVINO's model cache (`openvino/` in maskmodel's cache folder, where it can be created), so
    that later processes (each `--jobs` worker, each run) load them instead of compiling again."""

    backend = "openvino"
    MAX_SHAPES = 8

    def __init__(self, model: bytes, label: str, outputs: Sequence[str] | None, threads: int, precision: str,
                 static_shapes: bool = False) -> None:
        self.precision, self._label = precision, label
        self._config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                        # OpenVINO pins its threads to cores by default: the workers of `annotate --jobs N`
                        # then all ran on the same core (1.2 of 2 cores busy, slower than cv2.dnn in wall time)
                        "ENABLE_CPU_PINNING": False, **_model_cache()}
        try:
            self._model = _openvino_core().read_model(model, b"")
        except RuntimeError as error:
            raise ValueError(f"cannot load ONNX model {label}: {_first_line(error)}") from error
        self._output_names = list(outputs) if outputs else None
        self._static_shapes = static_shapes
        self._compiled: dict[tuple[int, ...] | None, tuple] = {}

    def _compile(self) -> tuple:
        """Compile for the current shape; where that fails with the model cache on, once more without it: two
        `--jobs` workers that meet an empty cache at their first photo compile the same model at once, and one
        of them was seen to fail reading the entry the other was writing (a photo of a batch lost)."""
        settings = [self._config] + ([{k: v for k, v in self._config.items() if k != "CACHE_DIR"}]
                                     if "CACHE_DIR" in self._config else [])
        for attempt, config in enumerate(settings, 1):
            try:
                compiled = _openvino_core().compile_model(self._model, "CPU", config)
                break
            except RuntimeError as error:
                if attempt == len(settings):
                    raise ValueError(f"cannot compile ONNX model {self._label}: {_first_line(error)}") from error
        ports = {name: port for port in compiled.outputs for name in port.get_names()}
        outputs = [ports[name] for name in self._output_names] if self._output_names else list(compiled.outputs)
        return compiled.create_infer_request(), outputs  # one request: a Network is used by one thread

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        key = blob.shape if self._static_shapes else None
        if key not in self._compiled:
            if self._static_shapes:
                if len(self._compiled) >= self.MAX_SHAPES:
                    self._compiled.pop(next(iter(self._compiled)))
                self._model.reshape({self._model.inputs[0]: list(key)})
            self._compiled[key] = self._compile()
        request, outputs = self._compiled[key]
        results = request.infer({0: np.ascontiguousarray(blob)})
        return [results[port] for port in outputs]


def _model_cache() -> dict:
    """OpenVINO's `CACHE_DIR` setting: maskmodel's cache folder as it is now, or none where it cannot be made."""
    folder = cache_dir() / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return {}
    return {"CACHE_DIR": str(folder)} if os.access(folder, os.W_OK) else {}


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0]


def open_network(model: str | os.PathLike | bytes, backend: str = "auto", precision: str = "auto",
                 outputs: Sequence[str] | None = None, engine: str = "auto", threads: int | None = None,
                 static_shapes: bool = False) -> Network:
    """An ONNX model (a file, or its bytes) prepared for and loaded on a backend.

    Args:
        model: the `.onnx` file or its bytes.
        backend: `"auto"`, `"opencv"`, `"onnxruntime"` or `"openvino"` (see the module docstring).
        precision: `"auto"`, `"fp32"` or `"bf16"` (see the module docstring).
        outputs: names of the outputs `run` returns, in this order; the model's outputs if `None`.
        engine: the `cv2.dnn` engine (opencv backend only): `"auto"`, `"new"`, `"classic"`.
        threads: threads of one inference; OpenCV's thread count (`cv2.getNumThreads()`) if `None`, so
            that a worker process set to one thread runs every network on one thread.
        static_shapes: on OpenVINO, compile a static-shape model for each input shape (the classifier,
            whose inputs come in few shapes); other backends ignore it.

    Raises:
        ValueError: an unknown backend or precision, a backend that is not installed, a model that
            cannot be read.
    """
    name = resolve_backend(backend)
    if not available(name):
        raise ValueError(f"backend {name!r} is not installed: pip install {_PACKAGES[name]} "
                         "(or use backend='opencv')")
    resolved = resolve_precision(name, precision)
    label = _label(model)
    data = model if isinstance(model, bytes) else _read_bytes(model)
    _check_external_data(data, None if isinstance(model, bytes) else Path(model).parent, label)
    threads = max(1, cv2.getNumThreads() if threads is None else threads)
    if name != "opencv":
        data = _prepared(data, label)
    if name == "onnxruntime":
        return OnnxRuntimeNetwork(data, label, outputs, threads)
    if name == "openvino":
        return OpenVINONetwork(data, label, outputs, threads, resolved, static_shapes)
    return OpenCVNetwork(data, label, outputs, engine)


def _check_external_data(model: bytes, folder: Path | None, label: str) -> None:
    """Refuse (`ValueError`) weights kept outside the model file unless each is a regular file inside the
    model's own folder (not a symlink, a FIFO or a device; no absolute path, no `..`), whatever the
    backend: a runtime would otherwise open whatever the model names, and block on a FIFO."""
    try:
        locations = external_data_locations(model)
    except (ValueError, IndexError):
        return  # not a protobuf message: the backend says so
    for location in locations:
        problem = None
        parts = PurePosixPath(location).parts
        if folder is None:
            problem = "a model given as bytes has no folder for them"
        elif not location or location.startswith("/") or "\\" in location or ".." in parts:
            problem = "not a relative name inside the model's folder"
        else:
            try:
                info = os.lstat(folder / location)
            except OSError as error:
                problem = error.strerror or str(error)
            else:
                real, base = os.path.realpath(folder / location), os.path.realpath(folder)
                if stat.S_ISLNK(info.st_mode) or os.path.commonpath([real, base]) != base:
                    problem = "a link, or outside the model's folder"
                elif not stat.S_ISREG(info.st_mode):
                    problem = f"not a regular file ({file_kind(info.st_mode)})"
        if problem:
            raise ValueError(f"cannot load ONNX model {label}: its weights in {location!r} are refused: {problem}")


def _prepared(model: bytes, label: str) -> bytes:
    """The model as ONNX Runtime and OpenVINO should get it: its weights not among its graph inputs."""
    try:
        return without_initializer_inputs(model)
    except (ValueError, IndexError) as error:  # not a protobuf message
        raise ValueError(f"cannot load ONNX model {label}: not an ONNX file ({error})") from None


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The model file, refused (`ValueError`) at its first bytes where these cannot start an ONNX file."""
    try:
        with open(path, "rb") as file:
            head = file.read(16)
            try:
                key(head)
            except ValueError as error:
                raise ValueError(f"cannot load ONNX model {str(path)!r}: not an ONNX file ({error})") from None
            return head + file.read()
    except OSError as error:
        raise ValueError(f"cannot load ONNX model {str(path)!r}: {error.strerror or error}") from error
