"""Readers for the public fundus datasets, in the layouts people download them in.

Every reader returns a list of :class:`Sample`. Layouts:

- ``folders``: one folder per class (Kaggle "eye_diseases_classification").
- ``aptos``: APTOS 2019 as the competition ships it (``train.csv`` + ``train_images/``),
  or the Kaggle copy "mariaherrerot/aptos2019" (``train_1.csv``/``valid.csv``/``test.csv``,
  keeping its given splits). Grade 0 is ``normal``, grades 1-4 ``diabetic_retinopathy``.
- ``glaucoma``: the "glaucoma-datasets" download: ``G1020/G1020.csv`` (+ ``ORIGA/OrigaList.csv``).
- ``manifest``: a CSV ``path,label[,group][,source][,grade][,split]``, paths relative to the CSV.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

from clarityx.imageio import is_image_path

CLASSES = ("normal", "cataract", "diabetic_retinopathy", "glaucoma")
LAYOUTS = ("folders", "aptos", "glaucoma", "manifest")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    group: str | None = None   # patient or duplicate group: never split across train/test
    source: str | None = None  # camera or collection, for per-source evaluation
    grade: int | None = None   # DR grade 0-4 where known
    split: str | None = None   # a split given by the dataset itself


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]


def _grade_label(grade: int) -> str:
    return "normal" if grade == 0 else "diabetic_retinopathy"


def read_folders(root: Path) -> list[Sample]:
    """One sub-folder per class; the folder name is the label."""
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and is_image_path(path):
                samples.append(Sample(path, folder.name, source=root.name))
    return samples


def _first_existing(root: Path, names: list[str]) -> Path | None:
    return next((root / n for n in names if (root / n).exists()), None)


def read_aptos(root: Path) -> list[Sample]:
    """APTOS 2019: the competition layout or the Kaggle copy with given splits."""
    splits = {
        "train": ("train_1.csv", ["train_images/train_images", "train_images"]),
        "validation": ("valid.csv", ["val_images/val_images", "val_images"]),
        "test": ("test.csv", ["test_images/test_images", "test_images"]),
    }
    samples = []
    if (root / "train_1.csv").exists():
        for split, (csv_name, folders) in splits.items():
            if not (root / csv_name).exists():
                continue
            folder = _first_existing(root, folders)
            for row in _read_csv(root / csv_name):
                grade = int(row["diagnosis"])
                samples.append(Sample(folder / f"{row['id_code']}.png", _grade_label(grade),
                                      source="aptos", grade=grade, split=split))
        return samples
    folder = _first_existing(root, ["train_images/train_images", "train_images"])
    for row in _read_csv(root / "train.csv"):
        grade = int(row["diagnosis"])
        samples.append(Sample(folder / f"{row['id_code']}.png", _grade_label(grade),
                              source="aptos", grade=grade))
    return samples


def _patient_column(row: dict[str, str]) -> str | None:
    return next((k for k in row if k.lower().replace("_", "") in ("patientid", "patient")), None)


def read_glaucoma(root: Path) -> list[Sample]:
    """G1020 (``imageID,binaryLabels``; 1 = glaucoma), and ORIGA when present."""
    samples = []
    g1020 = _first_existing(root, ["G1020/G1020.csv", "G1020.csv"])
    if g1020 is not None:
        images = g1020.parent / "Images"
        for row in _read_csv(g1020):
            patient_key = _patient_column(row)
            group = f"g1020:{row[patient_key]}" if patient_key else None
            label = "glaucoma" if int(row["binaryLabels"]) == 1 else "normal"
            samples.append(Sample(images / row["imageID"], label, group=group, source="g1020"))
    origa = _first_existing(root, ["ORIGA/OrigaList.csv", "OrigaList.csv"])
    if origa is not None:
        images = origa.parent / "Images"
        for row in _read_csv(origa):
            label = "glaucoma" if int(row["Glaucoma"]) == 1 else "normal"
            samples.append(Sample(images / row["Filename"], label, source="origa"))
    return samples


def read_manifest(csv_path: Path) -> list[Sample]:
    """``path,label[,group][,source][,grade|eyepacs_dr_grade][,split]``; paths relative to the CSV."""
    samples = []
    for row in _read_csv(csv_path):
        grade = row.get("grade") or row.get("eyepacs_dr_grade") or ""
        path = Path(row["path"])
        samples.append(Sample(
            path if path.is_absolute() else csv_path.parent / path,
            row["label"],
            group=row.get("group") or None,
            source=row.get("source") or None,
            grade=int(grade) if grade else None,
            split=row.get("split") or None,
        ))
    return samples


def detect_layout(root: Path) -> str:
    if root.is_file() and root.suffix.lower() == ".csv":
        return "manifest"
    if (root / "train_1.csv").exists() or ((root / "train.csv").exists() and (root / "train_images").exists()):
        return "aptos"
    if _first_existing(root, ["G1020/G1020.csv", "G1020.csv", "ORIGA/OrigaList.csv", "OrigaList.csv"]):
        return "glaucoma"
    if any(p.is_dir() for p in root.iterdir()):
        return "folders"
    raise ValueError(f"cannot tell which dataset layout {root} is; name one with --layout")


READERS = {"folders": read_folders, "aptos": read_aptos, "glaucoma": read_glaucoma,
           "manifest": read_manifest}


def load_dataset(root: str | Path, layout: str | None = None) -> list[Sample]:
    """Read a dataset, detecting its layout unless one is named."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset not found: {root}")
    layout = layout or detect_layout(root)
    if layout not in READERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    samples = READERS[layout](root)
    if not samples:
        raise ValueError(f"no images found in {root} ({layout} layout)")
    return samples


def drop_ungraded_dr(samples: list[Sample]) -> list[Sample]:
    """Keep a diabetic_retinopathy image only when its DR grade is known.

    In the Kaggle four-class set, 44% of the DR images with a public EyePACS grade are
    grade 0 (no DR): the ungraded ones are as noisy, so they cannot be trusted as labels.
    """
    return [s for s in samples if s.label != "diabetic_retinopathy" or s.grade is not None]


def relabel_dr_grade0(samples: list[Sample], policy: str) -> list[Sample]:
    """What a diabetic_retinopathy image with a known grade 0 means: keep, drop, or call it normal."""
    if policy == "keep":
        return samples
    out = []
    for s in samples:
        if s.label == "diabetic_retinopathy" and s.grade == 0:
            if policy == "drop":
                continue
            if policy == "normal":
                s = replace(s, label="normal")
            else:
                raise ValueError(f"unknown DR grade-0 policy {policy!r}")
        out.append(s)
    return out
