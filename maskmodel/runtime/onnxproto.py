"""Just enough of the ONNX protobuf format to prepare a model in memory for a runtime, without the `onnx`
package (which the runtime does not install): read the fields of a message, rewrite nested fields.

Used to make CenterFace's fixed input shape dynamic (`maskmodel.detect.centerface.dynamic_onnx`) and to
drop initializers from a graph's inputs (`without_initializer_inputs`): old exporters listed every weight
as a graph input too, and ONNX Runtime then treats them as overridable inputs and skips constant folding
(it says so in a warning; CenterFace ran 1.6x slower so).

Paths: ModelProto.graph (7) → GraphProto.node (1) / initializer (5) / input (11) / output (12);
ValueInfoProto.name (1) / type (2) → TypeProto.tensor_type (1) → shape (2); TensorProto.name (8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

GRAPH, INITIALIZER, INPUT, OUTPUT = 7, 5, 11, 12
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 13, 14
SPARSE_INITIALIZER, SPARSE_VALUES, SPARSE_INDICES = 15, 1, 2


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` of `data`, and the position after it (`ValueError`: cut off, or over 10 bytes)."""
    value = 0
    for index, byte in enumerate(data[pos:pos + 10]):
        value |= (byte & 0x7F) << 7 * index
        if byte < 0x80:
            return value, pos + index + 1
    raise ValueError("a protobuf varint cut off or over 10 bytes")


def key(data: bytes, pos: int = 0) -> tuple[int, int, int]:
    """The field number and wire type of the field key at `pos`, and the position after it. Raises
    `ValueError` for a key no protobuf message has (field number 0, a group, an unknown wire type)."""
    value, pos = varint(data, pos)
    field, wire = value >> 3, value & 7
    if field == 0:
        raise ValueError("protobuf field number 0")
    if wire not in (0, 1, 2, 5):
        raise ValueError(f"unsupported protobuf wire type {wire}")
    return field, wire, pos


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def fields(data: bytes) -> Iterator[tuple[int, bytes | None, bytes]]:
    """Protobuf fields of a message: (field number, payload of a length-delimited field or None, raw bytes).

    Raises `ValueError` at the first field that no protobuf message holds (field number 0, a group or an
    unknown wire type, a field running past the end): a file that is not protobuf is refused at its first
    bytes, not read two bytes at a time."""
    pos = 0
    while pos < len(data):
        start = pos
        field, wire, pos = key(data, pos)
        payload = None
        if wire == 0:
            _, pos = varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            length, pos = varint(data, pos)
            payload, pos = data[pos:pos + length], pos + length
        if pos > len(data):
            raise ValueError(f"protobuf field {field} runs past the end of its message")
        yield field, payload, data[start:pos]


def message(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return encode_varint(field << 3 | 2) + encode_varint(len(payload)) + payload


def with_nested(data: bytes, path: tuple[int, ...], change: Callable[[bytes], bytes]) -> bytes:
    """`data` with every length-delimited field at `path` replaced by `change(payload)`."""
    out = []
    for field, payload, raw in fields(data):
        if field == path[0] and payload is not None:
            raw = message(field, change(payload) if len(path) == 1 else with_nested(payload, path[1:], change))
        out.append(raw)
    return b"".join(out)


def name_of(value_info: bytes, field: int = 1) -> str:
    """The name of a ValueInfoProto (field 1) or TensorProto (field 8)."""
    return next((p for f, p, _ in fields(value_info) if f == field and p is not None), b"").decode()


def graph_input_names(model: bytes) -> list[str]:
    """The names of a model's graph inputs, initializers listed as inputs included."""
    graph = next((p for f, p, _ in fields(model) if f == GRAPH and p is not None), b"")
    return [name_of(p) for f, p, _ in fields(graph) if f == INPUT and p is not None]


def without_initializer_inputs(model: bytes) -> bytes:
    """The ONNX `model` without the graph inputs that are initializers (weights); unchanged when there are none."""

    def graph(payload: bytes) -> bytes:
        weights = {name_of(p, TENSOR_NAME) for f, p, _ in fields(payload) if f == INITIALIZER and p is not None}
        if not weights:
            return payload
        return b"".join(raw for f, p, raw in fields(payload)
                        if not (f == INPUT and p is not None and name_of(p) in weights))

    return with_nested(model, (GRAPH,), graph)


def external_data_locations(model: bytes) -> list[str]:
    """The `location` of every weight of the graph that is kept outside the model file (ONNX external
    data: a TensorProto with `external_data` entries), dense and sparse initializers alike; a weight
    marked external without a location gives ``""``."""
    graph = next((p for f, p, _ in fields(model) if f == GRAPH and p is not None), b"")
    tensors = []
    for field, payload, _ in fields(graph):
        if payload is None:
            continue
        if field == INITIALIZER:
            tensors.append(payload)
        elif field == SPARSE_INITIALIZER:
            tensors += [p for f, p, _ in fields(payload) if f in (SPARSE_VALUES, SPARSE_INDICES) and p is not None]
    locations = []
    for tensor in tensors:
        entries = [p for f, p, _ in fields(tensor) if f == TENSOR_EXTERNAL_DATA and p is not None]
        external = entries or any(f == TENSOR_DATA_LOCATION and raw[-1:] == b"\x01" for f, _, raw in fields(tensor))
        if not external:
            continue
        pairs = [{f: p for f, p, _ in fields(entry) if p is not None} for entry in entries]
        locations.append(next((pair.get(2, b"").decode("utf-8", "replace") for pair in pairs
                               if pair.get(1) == b"location"), ""))
    return locations
