"""Audit finds planted defects; the split honours it (no group straddles, copies train-only)."""
from collections import defaultdict

import cv2
import numpy as np
import pytest
from PIL import Image

from clarityx.data.audit import audit
from clarityx.data.datasets import load_dataset
from clarityx.data.split import make_split, read_split, write_split
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
    assert result.of("test") and result.of("validation") and result.of("train")

    kept = make_split(samples, report, 0.2, 0.2, seed=0, keep_augmented=True)
    kept_names = {s.path.name: s for s in kept.samples}
    assert kept_names["_4_1234567.jpg"].split == "train" and kept_names["4.jpg"].split == "train"

    path = tmp_path / "split.csv"
    write_split(result, path)
    again = read_split(path)
    assert [(s.path.resolve(), s.split, s.label) for s in again.samples] == \
           [(s.path.resolve(), s.split, s.label) for s in result.samples]


def same_camera_eye(seed: int) -> np.ndarray:
    """One camera's look (same colour, disc, exposure), each eye its own vessel tree."""
    img = np.zeros((300, 300, 3), np.uint8)
    cv2.circle(img, (150, 150), 135, (200, 80, 35), -1)
    cv2.circle(img, (210, 150), 25, (250, 200, 120), -1)
    rng = np.random.default_rng(seed)
    for _ in range(14):
        a, b = rng.integers(60, 240, size=2), rng.integers(60, 240, size=2)
        cv2.line(img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (110, 25, 15), 4)
    return img


def test_near_duplicates_need_the_same_vessels_not_just_the_same_camera(tmp_path):
    root = tmp_path / "data"
    (root / "normal").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(same_camera_eye(i)).save(root / "normal" / f"eye{i}.png")
    copy = cv2.resize(same_camera_eye(3)[:, ::-1], (240, 240))  # a flipped, smaller copy of eye 3
    Image.fromarray(copy).save(root / "normal" / "copy_of_3.jpg", quality=85)
    report = audit(load_dataset(root))
    groups = [{p.split("/")[-1] for p in g} for g in report.near_duplicate_groups]
    assert groups == [{"eye3.png", "copy_of_3.jpg"}]


def test_two_eyes_of_one_patient_may_differ_and_stay_together(tmp_path):
    root = tmp_path / "data"
    for i in range(30):
        for side, cls in (("left", "normal"), ("right", "cataract" if i % 3 == 0 else "normal")):
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(synthetic_fundus(200, seed=1000 + 2 * i + (side == "right"))).save(
                root / cls / f"{i}_{side}.png")
    samples = load_dataset(root)
    report = audit(samples)
    assert report.patients == 30 and report.patients_with_several_photos == 30
    result = make_split(samples, report, val_frac=0.2, test_frac=0.2, seed=1, calib_frac=0.1)
    assert not result.dropped and len(result.samples) == 60  # differing eyes are not a conflict
    split_of = defaultdict(set)
    for s in result.samples:
        split_of[s.path.name.split("_")[0]].add(s.split)
    assert all(len(v) == 1 for v in split_of.values()), "a patient straddles splits"
    assert {s.split for s in result.samples} == {"train", "validation", "calibration", "test"}


def test_a_photo_too_small_to_grade_is_listed_by_the_audit_and_kept_out_of_the_split(tmp_path):
    for cls in ("normal", "glaucoma"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            Image.fromarray(synthetic_fundus(160, seed=i + (10 if cls == "glaucoma" else 0))).save(
                tmp_path / cls / f"{i}.png")
    Image.fromarray(synthetic_fundus(100, seed=99)).save(tmp_path / "normal" / "thumb.png")  # under 128 px
    samples = load_dataset(tmp_path)
    report = audit(samples)
    assert [(u["path"].rsplit("/", 1)[-1], "100×100 pixels" in u["reason"]) for u in report.unreadable] == [
        ("thumb.png", True)]
    split = make_split(samples, report, 0.2, 0.2, seed=0)
    assert "thumb.png" not in {s.path.name for s in split.samples} and len(split.samples) == 12


def test_the_audit_refuses_a_decompression_bomb_before_pillow_warns(tmp_path):
    """The bomb filter is set before the file is opened: Pillow's warning (raised in Image.open)
    becomes the audit's refusal instead of leaking out as a warning."""
    import io
    import warnings

    from PIL import Image

    from clarityx.data.audit import read_file
    from clarityx.screening.errors import ImageTooLarge

    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, format="PNG")  # 100 MP declared, a tiny file
    (tmp_path / "bomb.png").write_bytes(buf.getvalue())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageTooLarge):
            read_file(tmp_path / "bomb.png")
    assert [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []
