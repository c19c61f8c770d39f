"""Writing files so that a failure (disk full, interrupted process) never leaves half a file behind.

Everything ClarityX writes that a person or a later run relies on — checkpoints, exported models,
heat maps, cards, the history database's exports — is written to a temporary file beside its target
and moved into place only when complete (``os.replace`` is atomic on one file system). What was
there before stays intact when the write fails. The file's bytes are flushed to the disk (``fsync``)
before the rename, and the folder's entry after it, so a power cut leaves the old file or the new
one, never an empty or partial one.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class WriteFailed(OSError):
    """A file could not be written; the message says which and why, for a person."""


def describe(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "no permission to write there"
    return exc.strerror or str(exc)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to write to; on success it replaces ``target``.

    On any error the temporary file is removed, ``target`` is left as it was, and an
    :class:`OSError` becomes :class:`WriteFailed` with a readable message.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same suffixes as the target (writers such as Keras check them), hidden, unique.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix="".join(target.suffixes) or ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, target)
        _fsync_folder(target.parent)
    except WriteFailed:
        raise
    except OSError as exc:
        failed = WriteFailed(f"Could not write {target}: {describe(exc)}. Nothing saved before it was lost.")
        failed.errno = exc.errno
        raise failed from exc
    finally:
        tmp_path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush a written file's bytes to the disk."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to the disk; where a system cannot, its rename stands."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode())
