"""A minimal ONNX model writer (protobuf wire format by hand).

Why not the `onnx` package: it needs a newer protobuf than the WebUI pins (3.20.0), and we only ever
write small, fixed graphs. Field numbers follow onnx.proto (ModelProto, GraphProto, NodeProto, ...).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

FLOAT, INT64 = 1, 7
_DTYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 -> two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def f_int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def f_bytes(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _key(number, 2) + _varint(len(data)) + data


def f_float(number: int, value: float) -> bytes:
    return _key(number, 5) + struct.pack("<f", value)


def tensor(name: str, array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    dims = b"".join(f_int(1, d) for d in array.shape)
    return dims + f_int(2, _DTYPES[array.dtype]) + f_bytes(8, name) + f_bytes(9, array.tobytes())


def value_info(name: str, shape: list[int | str], elem_type: int = FLOAT) -> bytes:
    dims = b"".join(f_bytes(1, f_int(1, d) if isinstance(d, int) else f_bytes(2, d)) for d in shape)
    tensor_type = f_int(1, elem_type) + f_bytes(2, dims)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, tensor_type))


def attribute(name: str, value: int | float | list[int] | list[float]) -> bytes:
    head = f_bytes(1, name)
    if isinstance(value, bool) or isinstance(value, int):
        return head + f_int(3, int(value)) + f_int(20, 2)
    if isinstance(value, float):
        return head + f_float(2, value) + f_int(20, 1)
    if value and all(isinstance(v, float) for v in value):
        return head + b"".join(f_float(7, v) for v in value) + f_int(20, 6)
    return head + b"".join(f_int(8, int(v)) for v in value) + f_int(20, 7)


@dataclass
class Graph:
    name: str
    nodes: list[bytes] = field(default_factory=list)
    initializers: list[bytes] = field(default_factory=list)
    inputs: list[bytes] = field(default_factory=list)
    outputs: list[bytes] = field(default_factory=list)
    _count: int = 0

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(tensor(name, array))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str] | None = None,
             **attrs: int | float | list[int] | list[float]) -> str:
        self._count += 1
        outputs = outputs or [f"{op.lower()}_{self._count}"]
        body = b"".join(f_bytes(1, i) for i in inputs) + b"".join(f_bytes(2, o) for o in outputs)
        body += f_bytes(3, f"{op}_{self._count}") + f_bytes(4, op)
        body += b"".join(f_bytes(5, attribute(k, v)) for k, v in sorted(attrs.items()))
        self.nodes.append(body)
        return outputs[0]

    def serialize(self, opset: int = 17, producer: str = "lora_lab") -> bytes:
        graph = (b"".join(f_bytes(1, n) for n in self.nodes) + f_bytes(2, self.name)
                 + b"".join(f_bytes(5, t) for t in self.initializers)
                 + b"".join(f_bytes(11, i) for i in self.inputs)
                 + b"".join(f_bytes(12, o) for o in self.outputs))
        opset_id = f_bytes(1, "") + f_int(2, opset)
        return (f_int(1, 8) + f_bytes(2, producer) + f_bytes(3, "1") + f_bytes(7, graph)
                + f_bytes(8, opset_id))
