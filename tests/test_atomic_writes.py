"""Files later runs rely on are written whole or not at all, and flushed to the disk."""
import ast
import os
from pathlib import Path

import pytest

from clarityx.data.datasets import Sample
from clarityx.data.split import SplitResult, read_split, write_split
from clarityx.screening import files
from clarityx.screening.files import WriteFailed, atomic_path, write_text

ROOT = Path(__file__).resolve().parent.parent


def test_atomic_path_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(files.os, "fsync", lambda fd: events.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")
                                                                     if os.path.exists("/proc/self/fd") else None))
                        or fsync(fd))
    monkeypatch.setattr(files.os, "replace", lambda a, b: events.append(("replace", None)) or replace(a, b))
    write_text(tmp_path / "card.json", "{}")
    assert (tmp_path / "card.json").read_text() == "{}"
    kinds = [e for e, _ in events]
    assert kinds[:2] == ["fsync", "replace"] and "fsync" in kinds[2:]
    if os.path.exists("/proc/self/fd"):
        assert events[0][1] is False and events[-1][1] is True  # the file first, then its folder


def test_a_split_file_written_over_survives_a_failed_write(tmp_path, monkeypatch):
    from clarityx.data import split as split_module

    photos = [tmp_path / f"{i}.png" for i in range(2)]
    for p in photos:
        p.write_bytes(b"x")
    result = SplitResult([Sample(p, "normal", group=str(i), split="train") for i, p in enumerate(photos)], [])
    path = tmp_path / "run.split.csv"
    write_split(SplitResult(result.samples[:1], []), path)
    before = path.read_bytes()
    relpath, calls = os.path.relpath, []

    def fails_on_the_second_row(*args):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return relpath(*args)

    monkeypatch.setattr(split_module.os.path, "relpath", fails_on_the_second_row)
    with pytest.raises(OSError):
        write_split(result, path)  # a later run would reuse a half-written split: it must not exist
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["0.png", "1.png",
                                                                                         "run.split.csv"]
    assert [s.path.name for s in read_split(path).samples] == ["0.png"]


NON_ATOMIC = ("write_text", "write_bytes", "write_html", "copy", "copyfile", "copy2", "savez", "savez_compressed")
CHECKED = ["clarityx/data/split.py", "clarityx/cli.py", "benchmarks/gate_rates.py", "scripts/recalibrate.py",
           "scripts/bundle.py", "clarityx/retrain.py", "train.py", "clarityx/model/export.py",
           "clarityx/screening/ood.py"]


@pytest.mark.parametrize("rel", CHECKED)
def test_these_writers_write_through_atomic_path(rel):
    """No direct Path.write_text/write_bytes, plotly write_html, shutil.copy or open(..., "w") on a
    final target (only on atomic_path's temporary file, or a log)."""
    tree = ast.parse((ROOT / rel).read_text())
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in NON_ATOMIC:
            second = node.args[1] if len(node.args) > 1 else None
            if node.func.attr.startswith("copy") and isinstance(second, ast.Name) and second.id == "tmp":
                continue  # copied onto atomic_path's temporary file
            first = node.args[0] if node.args else None
            if node.func.attr.startswith("savez") and isinstance(first, ast.Name) and first.id in ("tmp", "f"):
                continue  # numpy writing into atomic_path's temporary file (or a file opened on it)
            wrong.append(f"{rel}:{node.lineno} .{node.func.attr}(")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open" and \
                len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and "w" in str(node.args[1].value):
            target = node.args[0]
            if not (isinstance(target, ast.Name) and target.id == "tmp"):
                wrong.append(f"{rel}:{node.lineno} open(..., 'w')")
    allowed = {"clarityx/retrain.py": {"open(..., 'w')"}}  # train.log: a log, appended as the run goes
    wrong = [w for w in wrong if not any(w.endswith(a) for a in allowed.get(rel, ()))]
    assert wrong == []


def test_atomic_path_turns_a_failed_write_into_a_readable_error(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(WriteFailed, match="disk is full"):
        with atomic_path(target):
            raise OSError(28, "No space left on device")
    assert target.read_text() == "old"


def test_gate_statistics_and_exported_companions_survive_a_failed_write(tmp_path, monkeypatch):
    """ood.save (np.savez_compressed) and export's copies of the card and statistics go through atomic_path:
    a full disk in the middle leaves the previous file whole (issue 25, item 13)."""
    import numpy as np

    from clarityx.screening import ood as ood_module
    from clarityx.screening.ood import MahalanobisModel

    rng = np.random.default_rng(0)
    path = tmp_path / "m.ood.npz"
    old = MahalanobisModel.fit(rng.normal(size=(40, 8)), np.arange(40) % 2)
    old.save(path)
    before = path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ood.npz"]  # no second .npz suffix, no leftovers

    def fills_the_disk(file, **arrays):
        file.write(b"PK half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ood_module.np, "savez_compressed", fills_the_disk)
    with pytest.raises(WriteFailed, match="disk is full"):
        MahalanobisModel.fit(rng.normal(size=(40, 8)), np.arange(40) % 2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.ood.npz"]
    assert np.array_equal(MahalanobisModel.load(path).means, old.means)
