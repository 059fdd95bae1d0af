"""A small reader of safetensors files with numpy alone (Debian has no `safetensors` package).

    from diffuse import safetensors
    tensors, metadata = safetensors.load_file("model.safetensors")
    # PyTorch:  model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()
    #                                  if not k.startswith("train.")}, strict=True)

The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
a JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian bytes. Reads only; checks what it relies on and raises ValueError
naming the file otherwise.
"""
import json
import struct

import numpy as np

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
           "I8": "i1", "U8": "u1", "BOOL": "?"}


def load_file(path):
    """Returns ({name: numpy array}, {metadata key: str}). Arrays are copies (writable)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    try:
        header = json.loads(blob[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: the header is not JSON ({e})") from None
    metadata = header.pop("__metadata__", {}) or {}
    data = memoryview(blob)[8 + n:]
    tensors = {}
    for name, info in header.items():
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info.get('dtype')!r}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data) or end - begin != count * np.dtype(dtype).itemsize:
            raise ValueError(f"{path}: tensor {name!r} has offsets {begin}..{end} that do not fit "
                             f"its shape {list(shape)} or the file")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
    return tensors, metadata


def state_dict(path):
    """The model's weights only (no "train.*" resume state), under their PyTorch names."""
    tensors, _ = load_file(path)
    return {k: v for k, v in tensors.items() if not k.startswith("train.")}
