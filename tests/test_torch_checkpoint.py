"""The torch-free state-dict reader on files written here in both PyTorch formats (no torch needed)."""
import collections
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from clarityx.model.torch_checkpoint import load_state_dict


class StorageRef:
    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, array


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of a 'torch' module for pickle to write torch's global names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    storage = type("FloatStorage", (), {"__module__": "torch", "__qualname__": "FloatStorage"})
    torch.FloatStorage = storage

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return storage, _rebuild_tensor_v2


class Tensor:
    """Pickles like a torch tensor: a view (offset, shape, strides) into a flat storage."""

    def __init__(self, rebuild, ref: StorageRef, offset: int, shape, strides) -> None:
        self.rebuild, self.ref, self.offset, self.shape, self.strides = rebuild, ref, offset, shape, strides

    def __reduce__(self):
        return (self.rebuild, (self.ref, self.offset, self.shape, self.strides, False, collections.OrderedDict()))


def state(fake_torch):
    storage_type, rebuild = fake_torch
    flat = np.arange(12, dtype=np.float32)
    ref = StorageRef("0", flat)
    # a (3, 4) tensor, and its transpose as a strided view of the same storage, and an offset slice
    tensors = collections.OrderedDict(
        a=Tensor(rebuild, ref, 0, (3, 4), (4, 1)),
        t=Tensor(rebuild, ref, 0, (4, 3), (1, 4)),
        s=Tensor(rebuild, ref, 4, (4,), (1,)),
    )

    def pickled() -> bytes:
        buf = io.BytesIO()
        p = pickle.Pickler(buf, protocol=2)
        p.persistent_id = lambda o: ("storage", storage_type, o.key, "cpu", o.array.size) \
            if isinstance(o, StorageRef) else None
        p.dump(tensors)
        return buf.getvalue()

    return pickled(), flat


def check(sd: dict) -> None:
    expected = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(sd["a"], expected)
    assert np.array_equal(sd["t"], expected.T)
    assert np.array_equal(sd["s"], np.arange(4, 8, dtype=np.float32))


def test_zip_format(fake_torch, tmp_path):
    data, flat = state(fake_torch)
    path = tmp_path / "zip.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/data/0", flat.tobytes())
    check(load_state_dict(path))


def test_legacy_format(fake_torch, tmp_path):
    data, flat = state(fake_torch)
    path = tmp_path / "legacy.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        f.write(data)
        pickle.dump(["0"], f, protocol=2)
        f.write(struct.pack("<q", flat.size) + flat.tobytes())
    check(load_state_dict(path))


class Explode:
    """Runs code if unpickled with plain pickle: the attack a crafted checkpoint would use."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def legacy_file(path, data: bytes, flat: np.ndarray, header=(0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}),
                keys=("0",)) -> None:
    with open(path, "wb") as f:
        for obj in header:
            pickle.dump(obj, f, protocol=2)
        f.write(data)
        pickle.dump(list(keys) if not isinstance(keys, Explode) else keys, f, protocol=2)
        f.write(struct.pack("<q", flat.size) + flat.tobytes())


@pytest.mark.parametrize("where", ["magic", "protocol", "sysinfo", "storage_keys"])
def test_every_legacy_pickle_refuses_code(fake_torch, tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    data, flat = state(fake_torch)
    header = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}]
    keys = ("0",)
    if where == "storage_keys":
        keys = Explode()
    else:
        header[["magic", "protocol", "sysinfo"].index(where)] = Explode()
    legacy_file(tmp_path / "evil.pth", data, flat, tuple(header), keys)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "PWNED").exists()


def test_tensor_views_are_bounds_checked(fake_torch, tmp_path):
    storage_type, rebuild = fake_torch
    ref = StorageRef("0", np.arange(12, dtype=np.float32))
    for offset, shape, strides in [(0, (4, 4), (4, 1)), (10, (3,), (1,)), (0, (2,), (-1,))]:
        tensors = collections.OrderedDict(x=Tensor(rebuild, ref, offset, shape, strides))
        buf = io.BytesIO()
        p = pickle.Pickler(buf, protocol=2)
        p.persistent_id = lambda o: ("storage", storage_type, o.key, "cpu", o.array.size) \
            if isinstance(o, StorageRef) else None
        p.dump(tensors)
        legacy_file(tmp_path / "oob.pth", buf.getvalue(), ref.array)
        with pytest.raises(ValueError, match="storage"):
            load_state_dict(tmp_path / "oob.pth")
