"""Privacy: screening a photo opens no network connection and writes nothing to disk.

The watch is an audit hook (``sys.addaudithook``, PEP 578): it sees every file opened for writing
however it is opened (``open``, ``Path.write_bytes``, ``os.open``, ``tempfile.mkstemp``), every
SQLite database, every socket connection and the ``os`` calls that change the file system — the
project's own code included, not only what goes through ``builtins.open``.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import sys
import tempfile
from contextlib import contextmanager

import pytest

from clarityx.screening.pipeline import analyse

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
FILE_SYSTEM_CHANGES = {"os.remove", "os.rename", "os.replace", "os.mkdir", "os.rmdir", "os.truncate", "os.chmod",
                       "os.chown", "os.link", "os.symlink", "os.utime", "os.chdir", "os.mkfifo", "os.mknod",
                       "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move",
                       "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp", "os.system", "os.exec",
                       "os.posix_spawn", "os.spawn", "os.fork", "subprocess.Popen"}
LOOPBACK = ("127.0.0.1", "::1", "localhost")
_WATCH: list[list[tuple]] = []  # the records of the watches in progress (an audit hook cannot be removed)


def _hook(event: str, args: tuple) -> None:
    if not _WATCH:
        return
    seen = _WATCH[-1]
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        if (isinstance(mode, str) and any(m in mode for m in "wax+")) or \
                (isinstance(flags, int) and flags & WRITE_FLAGS):
            seen.append((event, path))
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        host = address[0] if isinstance(address, tuple) else address
        if not (isinstance(host, str) and host in LOOPBACK) and not isinstance(address, (str, bytes)):
            seen.append((event, address))
    elif event == "sqlite3.connect":
        seen.append((event, args[0] if args else None))
    elif event in FILE_SYSTEM_CHANGES:
        seen.append((event, args[:1]))


sys.addaudithook(_hook)


@contextmanager
def watch():
    """Everything written or connected to inside the block."""
    seen: list[tuple] = []
    _WATCH.append(seen)
    try:
        yield seen
    finally:
        _WATCH.remove(seen)


def test_the_watch_sees_every_kind_of_write_and_connection(tmp_path):
    """The watch itself: each of these would escape a test that patched builtins.open only."""
    target = tmp_path / "f.bin"
    with watch() as seen:
        target.write_bytes(b"x")                                  # Path.write_bytes
        os.close(os.open(tmp_path / "g", os.O_WRONLY | os.O_CREAT))  # os.open
        fd, name = tempfile.mkstemp(dir=tmp_path)                 # mkstemp
        os.close(fd)
        os.replace(name, tmp_path / "h")                          # os.replace
        sqlite3.connect(tmp_path / "db.sqlite3").close()          # sqlite3
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.05)
        try:
            sock.connect(("192.0.2.1", 9))                        # TEST-NET-1: never routed
        except OSError:
            pass
        finally:
            sock.close()
    events = {e for e, _ in seen}
    assert {"open", "tempfile.mkstemp", "os.rename", "sqlite3.connect", "socket.connect"} <= events  # replace: rename
    assert sum(e == "open" for e, _ in seen) >= 2
    with watch() as seen:
        target.read_bytes()  # reading is not writing
    assert seen == []


@pytest.fixture(params=["keras", "onnx"])
def engine(request, classifier):
    if request.param == "keras":
        return classifier  # the tiny test model on TensorFlow
    from clarityx.screening.engine import DEFAULT_MODEL, OnnxClassifier, onnx_path

    if not onnx_path(DEFAULT_MODEL).is_file():
        pytest.skip("no bundled ONNX graph")
    return OnnxClassifier(DEFAULT_MODEL)  # the app's engine on the bundled model


def test_screening_opens_no_connection_and_writes_no_file(engine, retina_png):
    data = retina_png.read_bytes()  # as an upload arrives: bytes in memory
    with watch() as seen:
        result = analyse(engine, data)
    assert result.status in ("ok", "rejected")
    # Python's own bytecode cache (a module imported for the first time) is not the person's data.
    assert [s for s in seen if "__pycache__" not in str(s[1])] == []
