"""Each public layout, generated small, read back."""
from pathlib import Path

import pytest
from PIL import Image

from clarityx.data.datasets import detect_layout, load_dataset, relabel_dr_grade0
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


ODIR_HEADER = ("ID,Patient Age,Patient Sex,Left-Fundus,Right-Fundus,Left-Diagnostic Keywords,"
               "Right-Diagnostic Keywords,N,D,G,C,A,H,M,O\n")


def odir_row(pid: int, left: str, right: str, flags: str = "1,1,1,1,1,1,1,1") -> str:
    # The patient-level flags are deliberately all set: a reader that used them would mislabel.
    return f"{pid},60,Female,{pid}_left.jpg,{pid}_right.jpg,{left},{right},{flags}\n"


def test_odir_labels_each_eye_by_its_own_keywords(tmp_path):
    from clarityx.data.datasets import MULTIPLE, OTHER_FINDINGS

    rows = [odir_row(1, "cataract", "normal fundus"),
            odir_row(2, "moderate non proliferative retinopathy，laser spot", "lens dust，normal fundus"),
            odir_row(3, "drusen", "cataract，glaucoma"),
            odir_row(4, "suspected glaucoma", "dry age-related macular degeneration"),
            odir_row(5, "pathological myopia", "diabetic retinopathy")]
    (tmp_path / "full_df.csv").write_text(ODIR_HEADER + "".join(rows * 2), encoding="utf-8")  # one row per photo
    for pid in range(1, 6):
        for side in ("left", "right"):
            img(tmp_path / "preprocessed_images" / f"{pid}_{side}.jpg", pid)
    (tmp_path / "preprocessed_images" / "5_right.jpg").unlink()  # named in the CSV, missing on disk
    assert detect_layout(tmp_path) == "odir"
    got = {s.path.name: (s.label, s.grade, s.group) for s in load_dataset(tmp_path)}
    assert len(got) == 9  # each photo once, the missing one skipped
    assert got["1_left.jpg"] == ("cataract", 0, "odir:1") and got["1_right.jpg"] == ("normal", 0, "odir:1")
    assert got["2_left.jpg"] == ("diabetic_retinopathy", 2, "odir:2")  # other findings beside DR: DR
    assert got["2_right.jpg"][0] == "normal"  # lens dust describes the photo, not the eye
    assert got["3_left.jpg"][0] == OTHER_FINDINGS and got["3_right.jpg"][0] == MULTIPLE
    assert got["4_left.jpg"][0] == OTHER_FINDINGS  # a suspicion is not a label
    assert got["4_right.jpg"][0] == "age_related_macular_degeneration"
    assert got["5_left.jpg"][0] == "pathological_myopia"


def test_several_datasets_read_one_photo_once(tmp_path):
    from clarityx.data.datasets import load_datasets

    odir = tmp_path / "odir5k"
    (odir / "preprocessed_images").mkdir(parents=True)
    (odir / "full_df.csv").write_text(ODIR_HEADER + odir_row(7, "glaucoma", "normal fundus"), encoding="utf-8")
    img(odir / "preprocessed_images" / "7_left.jpg")
    img(odir / "preprocessed_images" / "7_right.jpg", 1)
    img(tmp_path / "agg" / "glaucoma" / "7_left.jpg")        # the same ODIR photo, re-encoded elsewhere
    img(tmp_path / "agg" / "glaucoma" / "Glaucoma_001.png", 2)
    (tmp_path / "m.csv").write_text("path,label,source,patient\nagg/glaucoma/7_left.jpg,glaucoma,odir,odir:7\n"
                                    "agg/glaucoma/Glaucoma_001.png,glaucoma,retina_dataset,\n")
    samples, repeats = load_datasets([odir, tmp_path / "m.csv"])
    assert repeats == 1 and sorted(s.path.name for s in samples) == ["7_left.jpg", "7_right.jpg", "Glaucoma_001.png"]
    assert {s.group for s in samples if s.source == "odir"} == {"odir:7"}


def test_folder_patients_from_file_names(tmp_path):
    img(tmp_path / "normal" / "12_left.jpg")
    img(tmp_path / "cataract" / "12_right.jpg", 1)
    img(tmp_path / "cataract" / "other.png", 2)
    by_name = {s.path.name: s.group for s in load_dataset(tmp_path)}
    assert by_name["12_left.jpg"] == by_name["12_right.jpg"] is not None and by_name["other.png"] is None
    assert all(s.group is None for s in load_dataset(tmp_path, group_pattern=None))


def test_dr_grade_labels_come_from_known_grades_of_eyes_read_for_retinopathy(tmp_path):
    from clarityx.data.datasets import Sample, as_dr_grades

    samples = [Sample(tmp_path / "a.png", "normal", grade=0),
               Sample(tmp_path / "b.png", "diabetic_retinopathy", grade=3),
               Sample(tmp_path / "c.png", "diabetic_retinopathy", grade=None),  # unstaged: no grade to learn
               Sample(tmp_path / "d.png", "cataract", grade=0),  # a cloudy lens hides the retina
               Sample(tmp_path / "e.png", "diabetic_retinopathy", grade=0, conditions=("diabetic_retinopathy",))]
    got = as_dr_grades(samples)
    assert [(s.path.name, s.label, s.conditions) for s in got] == [
        ("a.png", "dr_grade_0", ()), ("b.png", "dr_grade_3", ()), ("e.png", "dr_grade_0", ())]
