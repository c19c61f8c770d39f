"""Audit finds planted defects; the split honours it (no group straddles, copies train-only)."""
from collections import defaultdict

import cv2
import numpy as np
import pytest
from PIL import Image

from clarityx.audit import audit
from clarityx.datasets import load_dataset
from clarityx.split import make_split, read_split, write_split
from tests.conftest import synthetic_fundus


@pytest.fixture
def defective(tmp_path):
    """40 distinct photos per class pair, plus planted defects."""
    root = tmp_path / "data"
    for cls in ("normal", "glaucoma"):
        (root / cls).mkdir(parents=True)
    for i in range(40):
        cls = "normal" if i % 2 else "glaucoma"
        Image.fromarray(synthetic_fundus(300, seed=100 + i)).save(root / cls / f"{i}.jpg", quality=95)
    base = synthetic_fundus(300, seed=100)  # image 0, a glaucoma photo
    # re-encoded, resized copy (near-duplicate, same label)
    Image.fromarray(cv2.resize(base, (256, 256))).save(root / "glaucoma" / "0_small.jpg", quality=70)
    # the same bytes under another class: a conflicting label
    (root / "normal" / "conflict.jpg").write_bytes((root / "glaucoma" / "2.jpg").read_bytes())
    # a pre-made augmented copy: flipped, smaller, Kaggle-style name
    flipped = cv2.resize(synthetic_fundus(300, seed=104)[:, ::-1], (200, 200))
    Image.fromarray(flipped).save(root / "glaucoma" / "_4_1234567.jpg", quality=95)
    # a flipped lower-resolution copy with an ordinary name
    rotated = cv2.resize(np.rot90(synthetic_fundus(300, seed=106)), (180, 180))
    Image.fromarray(rotated).save(root / "glaucoma" / "copy.jpg")
    (root / "normal" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


def test_audit_finds_the_planted_defects(defective):
    samples = load_dataset(defective)
    report = audit(samples, root=str(defective))
    assert report.files == 45
    assert [u["path"].split("/")[-1] for u in report.unreadable] == ["broken.jpg"]
    assert any({p.split("/")[-1] for p in g} == {"2.jpg", "conflict.jpg"} for g in report.exact_duplicate_groups)
    groups = [{p.split("/")[-1] for p in g} for g in report.near_duplicate_groups]
    assert any({"0.jpg", "0_small.jpg"} <= g for g in groups)
    assert any({"4.jpg", "_4_1234567.jpg"} <= g for g in groups)
    assert any(c["labels"] == ["glaucoma", "normal"] for c in report.conflicting_groups)
    augmented = {p.split("/")[-1] for p in report.augmented_copies}
    assert augmented == {"_4_1234567.jpg", "copy.jpg"}
    assert "Near-duplicate groups" in report.summary() and '"files": 45' in report.to_json()


def test_split_is_leak_free_and_reusable(defective, tmp_path):
    samples = load_dataset(defective)
    report = audit(samples)
    result = make_split(samples, report, val_frac=0.2, test_frac=0.2, seed=0)
    split_of_group = defaultdict(set)
    for s in result.samples:
        split_of_group[s.group].add(s.split)
    assert all(len(v) == 1 for v in split_of_group.values()), "a duplicate group straddles splits"
    names = {s.path.name: s for s in result.samples}
    assert "conflict.jpg" not in names and "2.jpg" not in names  # conflicting labels dropped
    assert any("conflicting" in why for _, why in result.dropped)
    assert "_4_1234567.jpg" not in names  # augmented copies excluded by default
    assert names["0.jpg"].split == names["0_small.jpg"].split
    counts = result.counts()
    assert counts["test"] and counts["validation"] and counts["train"]

    kept = make_split(samples, report, 0.2, 0.2, seed=0, keep_augmented=True)
    kept_names = {s.path.name: s for s in kept.samples}
    assert kept_names["_4_1234567.jpg"].split == "train" and kept_names["4.jpg"].split == "train"

    path = tmp_path / "split.csv"
    write_split(result, path)
    again = read_split(path)
    assert [(s.path.resolve(), s.split, s.label) for s in again.samples] == \
           [(s.path.resolve(), s.split, s.label) for s in result.samples]
