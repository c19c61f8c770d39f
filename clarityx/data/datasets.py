"""Readers for the public fundus datasets, in the layouts people download them in.

Every reader returns a list of :class:`Sample`. Layouts:

- ``folders``: one folder per class (Kaggle "eye_diseases_classification").
- ``aptos``: APTOS 2019 as the competition ships it (``train.csv`` + ``train_images/``),
  or the Kaggle copy "mariaherrerot/aptos2019" (``train_1.csv``/``valid.csv``/``test.csv``,
  keeping its given splits). Grade 0 is ``normal``, grades 1-4 ``diabetic_retinopathy``.
- ``glaucoma``: the "glaucoma-datasets" download: ``G1020/G1020.csv`` (+ ``ORIGA/OrigaList.csv``).
- ``odir``: ODIR-5K as the Kaggle download ships it (``full_df.csv`` + ``preprocessed_images/``).
  Each photo is labelled by **its own eye's** diagnostic keywords through :data:`ODIR_KEYWORDS`,
  never by the patient-level N/D/G/C/A/H/M/O flags.
- ``manifest``: a CSV ``path,label[,group|patient][,source][,grade][,split]``, paths relative to the CSV.

A DR-grade model is trained on the same readers' output through :func:`as_dr_grades`.

Patients: every reader sets ``Sample.group`` to a patient id where the layout knows one
(``odir:ID``, the manifest's ``patient`` column, or a ``NNN_left``/``NNN_right`` file name in a folder
dataset), so that both eyes of one person always land in the same split.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path

from clarityx.screening.classes import CLASSES  # noqa: F401  (the bundled model's conditions: train.py, scripts)
from clarityx.screening.classes import DIABETIC_RETINOPATHY, GLAUCOMA, NORMAL, odir_keywords
from clarityx.screening.grades import GRADE_CLASSES
from clarityx.screening.imageio import is_image_path

LAYOUTS = ("folders", "aptos", "glaucoma", "odir", "manifest")
# Labels that are not model classes but are kept through the split, for honest reporting:
OTHER_FINDINGS = "other_findings"   # an abnormal eye with none of the model's conditions
MULTIPLE = "multiple_conditions"    # an eye with two or more of the model's conditions
REPORTED_APART = (OTHER_FINDINGS, MULTIPLE)
# Sources of the public research collections (readers below, and the shared manifest's `source` column):
# a model trained on any of them inherits their research-only licence, and its card says so.
PUBLIC_SOURCES = frozenset({"odir", "eyepacs", "retina_dataset", "augmented_copy", "aptos", "g1020", "origa"})
# Default --group-pattern: "123_left.jpg" and "123_right.jpg" are one patient.
EYE_PAIR_PATTERN = r"^(\d+)_(?:left|right)\b"
# Other common ways of naming a patient's photos, tried (in this order) on a folder of class sub-folders when
# the default pattern finds no patient in it: the first that names the patient of most photos is used.
COMMON_PATIENT_PATTERNS = (
    # "c1_Patient001_L.jpg", "patient-12 OD.png", "pt_7_left.jpg": a number after the word patient (or pt)
    r"(?:^|[^a-z])(?:patient|pt)[ _-]?(\d+)",
    # "0042_OD.jpg", "smith_L.png", "123-OS-2.jpeg", "A17 right.tif": the name before the eye it shows
    r"^(.+?)[ _-](?:l|r|od|os|ou|left|right)(?:[ _-]?\d{1,3})?\.[a-z0-9]+$",
)
PATIENT_NAMING_HELP = ("Name each photo with its patient (for example 123_left.jpg and 123_right.jpg, "
                       "Patient001_L.jpg, 0042_OD.jpg), or give the pattern of your names with --group-pattern "
                       "REGEX (the first bracketed group is the patient), so that a patient's photos stay together "
                       "in one part of the split.")

# ODIR-5K per-eye keywords -> (condition, DR grade), from the class table
# (clarityx.screening.classes). Condition None: a finding that describes the photo, not the eye
# (ignored). Any other keyword is "other": an abnormality the model has no class for. Suspected
# findings are "other": a suspicion is not a label to train on, and the eye is not normal.
ODIR_KEYWORDS: dict[str, tuple[str | None, int | None]] = odir_keywords()


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    group: str | None = None   # patient or duplicate group: never split across train/test
    source: str | None = None  # camera or collection, for per-source evaluation
    grade: int | None = None   # DR grade 0-4 where known
    split: str | None = None   # a split given by the dataset itself
    conditions: tuple[str, ...] = ()  # every model condition of an eye (several for MULTIPLE)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]


def _grade_label(grade: int) -> str:
    return NORMAL if grade == 0 else DIABETIC_RETINOPATHY


def patient_of(name: str, pattern: str | None, prefix: str) -> str | None:
    """The patient a file name names under ``pattern`` (its first group), as ``prefix:id``."""
    if not pattern:
        return None
    m = re.search(pattern, name, flags=re.IGNORECASE)
    return f"{prefix}:{m.group(1) if m.groups() else m.group(0)}" if m else None


def patient_pattern(names: list[str], group_pattern: str | None = EYE_PAIR_PATTERN) -> str | None:
    """The pattern that names these files' patients: ``group_pattern``; when that is the default and names no
    file's patient, the first of :data:`COMMON_PATIENT_PATTERNS` that names the patient of most files; else
    ``group_pattern`` (which then names none: the audit says so, and how to give them)."""
    if not group_pattern or group_pattern != EYE_PAIR_PATTERN:
        return group_pattern
    if not names or any(patient_of(n, group_pattern, "") for n in names):
        return group_pattern
    for pattern in COMMON_PATIENT_PATTERNS:
        if 2 * sum(patient_of(n, pattern, "") is not None for n in names) > len(names):
            return pattern
    return group_pattern


def read_folders(root: Path, group_pattern: str | None = EYE_PAIR_PATTERN) -> list[Sample]:
    """One sub-folder per class; the folder name is the label; the patient from the file name (under
    :func:`patient_pattern`: the common namings are recognised when the default finds none)."""
    found = [(folder, path) for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
             for path in sorted(folder.rglob("*")) if path.is_file() and is_image_path(path)]
    pattern = patient_pattern([path.name for _, path in found], group_pattern)
    return [Sample(path, folder.name, source=root.name, group=patient_of(path.name, pattern, root.name))
            for folder, path in found]


def odir_eye(keywords: str) -> tuple[str, int | None, tuple[str, ...]]:
    """One eye's ODIR-5K keywords → (label, DR grade, model conditions), through :data:`ODIR_KEYWORDS`.

    Label: the one model condition an eye has (other findings beside it do not change it);
    :data:`MULTIPLE` for two or more; :data:`OTHER_FINDINGS` for an abnormal eye with none;
    ``normal`` only for "normal fundus" (quality remarks aside).
    """
    conditions: set[str] = set()
    grades = []
    other = False
    dr_unknown = False  # "diabetic retinopathy" without a stage, or a suspicion of it
    for word in re.split(r"[，,]", keywords):
        word = word.strip().lower()
        if not word:
            continue
        condition, grade = ODIR_KEYWORDS.get(word, ("other", None))
        if condition == "other":
            other = True
        elif condition:
            conditions.add(condition)
            if grade is not None:
                grades.append(grade)
        dr_unknown |= "diabetic" in word and grade is None
    diseases = sorted(conditions - {NORMAL})
    # The DR grade of every eye a doctor read: 0 where no retinopathy was named.
    grade = max(grades) if grades else (None if dr_unknown else 0)
    if len(diseases) > 1:
        return MULTIPLE, grade, tuple(diseases)
    if diseases:
        return diseases[0], grade, tuple(diseases)
    if other or not conditions:
        return OTHER_FINDINGS, grade, ()
    return NORMAL, 0, (NORMAL,)


def read_odir(root: Path) -> list[Sample]:
    """ODIR-5K: ``full_df.csv`` (one row per photo, each carrying the whole patient) and
    ``preprocessed_images/``. Only photos that exist are returned, each once."""
    images = _first_existing(root, ["preprocessed_images", "ODIR-5K/Training Images"])
    if images is None:
        raise ValueError(f"{root}: no preprocessed_images/ folder")
    samples: dict[str, Sample] = {}
    for row in _read_csv(root / "full_df.csv"):
        for side in ("Left", "Right"):
            name = row.get(f"{side}-Fundus", "")
            path = images / name
            if not name or name in samples or not path.is_file():
                continue
            label, grade, conditions = odir_eye(row.get(f"{side}-Diagnostic Keywords", ""))
            samples[name] = Sample(path, label, group=f"odir:{row['ID']}", source="odir",
                                   grade=grade, conditions=conditions)
    return sorted(samples.values(), key=lambda s: s.path.name)


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
            label = GLAUCOMA if int(row["binaryLabels"]) == 1 else NORMAL
            samples.append(Sample(images / row["imageID"], label, group=group, source="g1020"))
    origa = _first_existing(root, ["ORIGA/OrigaList.csv", "OrigaList.csv"])
    if origa is not None:
        images = origa.parent / "Images"
        for row in _read_csv(origa):
            label = GLAUCOMA if int(row["Glaucoma"]) == 1 else NORMAL
            samples.append(Sample(images / row["Filename"], label, source="origa"))
    return samples


def read_manifest(csv_path: Path) -> list[Sample]:
    """``path,label[,group|patient][,source][,grade|eyepacs_dr_grade][,split]``; paths relative to the CSV."""
    samples = []
    for row in _read_csv(csv_path):
        grade = row.get("grade") or row.get("eyepacs_dr_grade") or ""
        path = Path(row["path"])
        samples.append(Sample(
            path if path.is_absolute() else csv_path.parent / path,
            row["label"],
            group=row.get("group") or row.get("patient") or None,
            source=row.get("source") or None,
            grade=int(grade) if grade else None,
            split=row.get("split") or None,
            conditions=tuple(c for c in (row.get("conditions") or "").split("+") if c),
        ))
    return samples


def detect_layout(root: Path) -> str:
    if root.is_file() and root.suffix.lower() == ".csv":
        return "manifest"
    if (root / "train_1.csv").exists() or ((root / "train.csv").exists() and (root / "train_images").exists()):
        return "aptos"
    if _first_existing(root, ["G1020/G1020.csv", "G1020.csv", "ORIGA/OrigaList.csv", "OrigaList.csv"]):
        return "glaucoma"
    if (root / "full_df.csv").exists():
        return "odir"
    if any(p.is_dir() for p in root.iterdir()):
        return "folders"
    raise ValueError(f"cannot tell which dataset layout {root} is; name one with --layout")


READERS = {"folders": read_folders, "aptos": read_aptos, "glaucoma": read_glaucoma,
           "odir": read_odir, "manifest": read_manifest}


def load_dataset(root: str | Path, layout: str | None = None,
                 group_pattern: str | None = EYE_PAIR_PATTERN) -> list[Sample]:
    """Read a dataset, detecting its layout unless one is named."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset not found: {root}")
    layout = layout or detect_layout(root)
    if layout not in READERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    samples = read_folders(root, group_pattern) if layout == "folders" else READERS[layout](root)
    if not samples:
        raise ValueError(f"no images found in {root} ({layout} layout)")
    return samples


def photo_key(sample: Sample) -> tuple[str, str]:
    """What makes two files one photo across datasets: the same source and file stem.
    (eye_diseases' ODIR files are ODIR-5K's ``N_left.jpg``, re-encoded.)"""
    return (sample.source or "", sample.path.stem.lower())


def load_datasets(roots: list[str | Path], layout: str | None = None,
                  group_pattern: str | None = EYE_PAIR_PATTERN) -> tuple[list[Sample], int]:
    """Read several datasets as one. A photo already read from an earlier dataset (same
    :func:`photo_key`) is skipped, so list the dataset with the best labels first.
    Returns (samples, photos skipped as repeats)."""
    out: list[Sample] = []
    seen: set[tuple[str, str]] = set()
    repeats = 0
    for root in roots:
        fresh = []
        for s in load_dataset(root, layout, group_pattern):
            if s.source and photo_key(s) in seen:
                repeats += 1
                continue
            fresh.append(s)
        seen.update(photo_key(s) for s in fresh if s.source)
        out += fresh
    return out, repeats


def drop_ungraded_dr(samples: list[Sample]) -> list[Sample]:
    """Keep a diabetic_retinopathy image only when its DR grade is known.

    In the Kaggle four-class set, 44% of the DR images with a public EyePACS grade are
    grade 0 (no DR): the ungraded ones are as noisy, so they cannot be trusted as labels.
    """
    return [s for s in samples if s.label != DIABETIC_RETINOPATHY or s.grade is not None]


def relabel_dr_grade0(samples: list[Sample], policy: str) -> list[Sample]:
    """What a diabetic_retinopathy image with a known grade 0 means: keep, drop, or call it normal."""
    if policy == "keep":
        return samples
    out = []
    for s in samples:
        if s.label == DIABETIC_RETINOPATHY and s.grade == 0:
            if policy == "drop":
                continue
            if policy == "normal":
                s = replace(s, label=NORMAL)
            else:
                raise ValueError(f"unknown DR grade-0 policy {policy!r}")
        out.append(s)
    return out


def as_dr_grades(samples: list[Sample]) -> list[Sample]:
    """Relabel for a DR-grade model (``train.py --task dr-grade``): each eye read for retinopathy
    (normal or diabetic_retinopathy) with a known grade becomes ``dr_grade_N``. Eyes without a grade,
    and eyes with another condition that can hide retinopathy (a cataract) or mimic it, are left out."""
    return [replace(s, label=GRADE_CLASSES[s.grade], conditions=())
            for s in samples
            if s.grade is not None and 0 <= s.grade < len(GRADE_CLASSES)
            and s.label in (NORMAL, DIABETIC_RETINOPATHY)]
