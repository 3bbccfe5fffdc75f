"""The safetensors format, read and written with the standard library and torch only:

    [8 bytes: header length N, unsigned little-endian]
    [N bytes: UTF-8 JSON {"__metadata__": {str: str}, name: {dtype, shape, data_offsets}},
              padded with spaces so the data starts 8-byte aligned]
    [data: little-endian tensor bytes; offsets relative to the start of this section]

Reading checks lengths, dtypes, shapes and offsets against the file before building tensors,
so a truncated or corrupt file is a one-sentence error, not garbage.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

# safetensors dtype -> (numpy little-endian dtype, torch dtype)
DTYPES = {
    "F64": ("<f8", torch.float64),
    "F32": ("<f4", torch.float32),
    "I64": ("<i8", torch.int64),
    "I32": ("<i4", torch.int32),
    "U8": ("u1", torch.uint8),
}
TORCH_TO_SAFE = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}

MAX_HEADER_BYTES = 100_000_000


def decode_safetensors(buf, where="<safetensors>"):
    """bytes -> (dict name -> CPU tensor, metadata dict of str)."""
    if len(buf) < 8:
        raise ValueError(f"{where}: {len(buf)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(buf):
        raise ValueError(f"{where}: header length {n} does not fit the file of {len(buf)} bytes")
    try:
        header = json.loads(bytes(buf[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: the header is not valid JSON ({e})")
    if not isinstance(header, dict):
        raise ValueError(f"{where}: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError(f"{where}: __metadata__ must map strings to strings")
    data = memoryview(buf)[8 + n :]
    tensors = {}
    for name, t in header.items():
        if not isinstance(t, dict) or t.get("dtype") not in DTYPES:
            raise ValueError(f"{where}: tensor {name} has an unsupported dtype {t.get('dtype') if isinstance(t, dict) else t!r}")
        shape = t.get("shape")
        offsets = t.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValueError(f"{where}: tensor {name} has a bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ValueError(f"{where}: tensor {name} has bad data_offsets {offsets!r}")
        begin, end = offsets
        np_dtype = np.dtype(DTYPES[t["dtype"]][0])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= len(data)) or end - begin != count * np_dtype.itemsize:
            raise ValueError(f"{where}: tensor {name}: offsets [{begin}, {end}] do not hold {count} values of {t['dtype']} within the data")
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape)
        tensors[name] = torch.from_numpy(arr.astype(np_dtype.newbyteorder("="), copy=True))
    return tensors, dict(metadata)


def read_safetensors(path):
    with open(path, "rb") as f:
        return decode_safetensors(f.read(), path)


def encode_safetensors(tensors, metadata=None):
    """dict name -> tensor (any device) -> bytes. Laid out by item size (largest first), then
    name, so each tensor is aligned to its item size, as clayflow and the Python package do."""
    entries = []
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        if t.dtype not in TORCH_TO_SAFE:
            raise ValueError(f"encode_safetensors: tensor {name} has unsupported dtype {t.dtype}")
        entries.append((name, t))
    entries.sort(key=lambda e: (-e[1].element_size(), e[0]))
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, t in entries:
        raw = t.numpy().astype(DTYPES[TORCH_TO_SAFE[t.dtype]][0], copy=False).tobytes()
        header[name] = {"dtype": TORCH_TO_SAFE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_file_atomic(path, data):
    """Write to a temporary file beside `path`, fsync, rename over it, fsync the directory:
    a crash leaves the old file or the new one, never half of one."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if sys.platform != "win32":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_safetensors(path, tensors, metadata=None):
    write_file_atomic(path, encode_safetensors(tensors, metadata))
