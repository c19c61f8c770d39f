"""Each public layout, generated small, read back."""
from pathlib import Path

import pytest
from PIL import Image

from clarityx.datasets import detect_layout, load_dataset, relabel_dr_grade0
from tests.conftest import synthetic_fundus


def img(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(synthetic_fundus(160, seed=seed)).save(path)


def test_folders(tmp_path):
    for cls in ("normal", "glaucoma"):
        for i in range(2):
            img(tmp_path / cls / f"{i}.jpg", i)
    (tmp_path / "normal" / "readme.txt").write_text("x")
    samples = load_dataset(tmp_path)
    assert detect_layout(tmp_path) == "folders"
    assert sorted(s.label for s in samples) == ["glaucoma", "glaucoma", "normal", "normal"]


def test_aptos_competition_layout(tmp_path):
    (tmp_path / "train.csv").write_text("id_code,diagnosis\naa,0\nbb,3\n")
    img(tmp_path / "train_images" / "aa.png")
    img(tmp_path / "train_images" / "bb.png", 1)
    samples = load_dataset(tmp_path)
    assert detect_layout(tmp_path) == "aptos"
    assert [(s.label, s.grade, s.path.name) for s in samples] == [
        ("normal", 0, "aa.png"), ("diabetic_retinopathy", 3, "bb.png")]


def test_aptos_kaggle_copy_keeps_given_splits(tmp_path):
    for csv_name, folder, ids in [("train_1.csv", "train_images/train_images", ["t1", "t2"]),
                                  ("valid.csv", "val_images/val_images", ["v1"]),
                                  ("test.csv", "test_images/test_images", ["x1"])]:
        (tmp_path / csv_name).write_text("id_code,diagnosis\n" + "".join(f"{i},{n % 5}\n" for n, i in enumerate(ids)))
        for i in ids:
            img(tmp_path / folder / f"{i}.png")
    samples = load_dataset(tmp_path)
    assert {s.path.stem: s.split for s in samples} == {"t1": "train", "t2": "train", "v1": "validation", "x1": "test"}
    assert all(s.path.is_file() for s in samples)


def test_glaucoma_g1020_and_origa(tmp_path):
    (tmp_path / "G1020").mkdir()
    (tmp_path / "G1020" / "G1020.csv").write_text("imageID,binaryLabels\nimage_0.jpg,1\nimage_1.jpg,0\n")
    img(tmp_path / "G1020" / "Images" / "image_0.jpg")
    img(tmp_path / "G1020" / "Images" / "image_1.jpg", 1)
    (tmp_path / "G1020" / "Images" / "image_0.json").write_text("{}")
    (tmp_path / "ORIGA").mkdir()
    (tmp_path / "ORIGA" / "OrigaList.csv").write_text("Filename,Glaucoma\n001.jpg,0\n")
    img(tmp_path / "ORIGA" / "Images" / "001.jpg", 2)
    samples = load_dataset(tmp_path)
    assert detect_layout(tmp_path) == "glaucoma"
    assert [(s.path.name, s.label, s.source) for s in samples] == [
        ("image_0.jpg", "glaucoma", "g1020"), ("image_1.jpg", "normal", "g1020"), ("001.jpg", "normal", "origa")]


def test_g1020_groups_by_patient_when_given(tmp_path):
    (tmp_path / "G1020.csv").write_text("imageID,binaryLabels,patient_id\na.jpg,1,7\nb.jpg,1,7\n")
    samples = load_dataset(tmp_path, "glaucoma")
    assert {s.group for s in samples} == {"g1020:7"}


def test_manifest(tmp_path):
    img(tmp_path / "x" / "a.png")
    (tmp_path / "m.csv").write_text("path,label,group,source,eyepacs_dr_grade\n"
                                    "x/a.png,diabetic_retinopathy,p1,eyepacs,0\n")
    (s,) = load_dataset(tmp_path / "m.csv")
    assert s.path == tmp_path / "x" / "a.png" and s.group == "p1" and s.grade == 0
    assert relabel_dr_grade0([s], "normal")[0].label == "normal"
    assert relabel_dr_grade0([s], "drop") == []
    assert relabel_dr_grade0([s], "keep") == [s]


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError):
        load_dataset(tmp_path / "empty")
