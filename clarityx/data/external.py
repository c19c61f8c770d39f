"""Readers for the outside check sets: photos from other countries and cameras, never trained on.

``external/mexico/labels.csv`` (Hughes Cano, Olivares Pinto & Thébault, "Dataset of Eye Fundus and OCT
Images for the study of Diabetic Macular Edema and Diabetic Retinopathy", Mexico) and
``external/heimed/labels.csv`` (HEI-MED; Giancardo et al., "Exudate-based diabetic macular edema
detection in fundus images using publicly available datasets", Medical Image Analysis 2012).

Every photo becomes an :class:`OutsidePhoto` with one meaning for every set:

- ``healthy``: no retinopathy at all (Mexico ``dr`` none; HEI-MED ``lesions`` none);
- ``referable``: proliferative DR or macular oedema (Mexico), exudates (HEI-MED);
- ``dr``: any retinopathy (everything that is not healthy).

They are for judging a model, never for training it or fitting any of its thresholds.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

OUTSIDE_SETS = ("mexico", "heimed")


@dataclass(frozen=True)
class OutsidePhoto:
    path: Path
    dataset: str              # "mexico" | "heimed"
    patient: str              # bootstrap unit (a HEI-MED photo is its own unit: the set has no patient ids)
    healthy: bool
    referable: bool
    original: Path | None = None  # the same photo at its source size, where the set keeps it

    @property
    def dr(self) -> bool:
        return not self.healthy


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_mexico(root: str | Path) -> list[OutsidePhoto]:
    root = Path(root)
    out = []
    for row in _rows(root / "labels.csv"):
        dr = row["dr"].strip()
        if dr not in ("none", "non_proliferative", "proliferative"):
            raise ValueError(f"{root / 'labels.csv'}: unknown dr value {dr!r}")
        original = row.get("original", "").strip()
        out.append(OutsidePhoto(
            path=root / row["path"], dataset="mexico", patient=row["patient"],
            healthy=dr == "none", referable=dr == "proliferative" or row["dme"].strip() == "1",
            original=root / original if original else None))
    return out


def read_heimed(root: str | Path) -> list[OutsidePhoto]:
    root = Path(root)
    out = []
    for row in _rows(root / "labels.csv"):
        lesions = row["lesions"].strip()
        if lesions not in ("none", "microaneurysms", "exudates"):
            raise ValueError(f"{root / 'labels.csv'}: unknown lesions value {lesions!r}")
        out.append(OutsidePhoto(path=root / row["path"], dataset="heimed", patient="heimed:" + row["path"],
                                healthy=lesions == "none", referable=lesions == "exudates"))
    return out


READERS = {"mexico": read_mexico, "heimed": read_heimed}


def find_outside(data_root: str | Path) -> Path | None:
    """The ``external`` folder under a data root (``../shared/data``), or the folder itself."""
    root = Path(data_root)
    for candidate in (root / "external", root):
        if any((candidate / name / "labels.csv").is_file() for name in OUTSIDE_SETS):
            return candidate
    return None


def read_outside(external: str | Path) -> dict[str, list[OutsidePhoto]]:
    """Every outside set present under ``external`` (``{name: photos}``)."""
    external = Path(external)
    return {name: READERS[name](external / name) for name in OUTSIDE_SETS
            if (external / name / "labels.csv").is_file()}


# --- Sets that are fetched (scripts/fetch_outside.sh, into ../fetched) or that check one answer each -------------


@dataclass(frozen=True)
class GradedPhoto:
    """A photo with a known DR grade (0-4) and macular-oedema risk (0-2), as IDRiD grades them."""
    path: Path
    dataset: str
    part: str          # "train" | "test" (the set's own parts)
    grade: int
    dme: int

    @property
    def referable(self) -> bool:
        return self.grade >= 2

    @property
    def patient(self) -> str:  # IDRiD publishes no patient ids: each photo is its own bootstrap unit
        return f"{self.dataset}:{self.part}:{self.path.stem}"


IDRID_GRADING = "dataset/B. Disease Grading"


def read_idrid(root: str | Path) -> list[GradedPhoto]:
    """IDRiD's disease-grading part (Porwal et al., "Indian Diabetic Retinopathy Image Dataset (IDRiD)", Data 3(3),
    2018; CC BY 4.0): 413 training and 103 test photos (Kowa VX-10α, 4288×2848) with DR grade and oedema risk.
    The labels are CRLF CSVs whose header has a trailing space; the test ids restart at IDRiD_001."""
    base = Path(root) / IDRID_GRADING
    if not base.is_dir():
        base = Path(root)
    out = []
    for part, images, labels in (("train", "a. Training Set", "a. IDRiD_Disease Grading_Training Labels.csv"),
                                 ("test", "b. Testing Set", "b. IDRiD_Disease Grading_Testing Labels.csv")):
        csv_file = base / "2. Groundtruths" / labels
        if not csv_file.is_file():
            continue
        with open(csv_file, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
        header = [h.strip() for h in rows[0]]
        name, grade, dme = (header.index(k) for k in ("Image name", "Retinopathy grade", "Risk of macular edema"))
        for row in rows[1:]:
            if len(row) <= max(name, grade, dme) or not row[name].strip():
                continue
            out.append(GradedPhoto(base / "1. Original Images" / images / f"{row[name].strip()}.jpg", "idrid", part,
                                   int(row[grade]), int(row[dme])))
    return out


@dataclass(frozen=True)
class DiscPhoto:
    """An optic-disc crop labelled glaucoma or normal (ACRIMA: Diaz-Pinto et al., "CNNs for automatic glaucoma
    assessment using fundus images: an extensive validation", BioMedical Engineering OnLine 18:29, 2019;
    CC BY 4.0). Glaucoma files carry ``_g_`` in their names."""
    path: Path
    glaucoma: bool


def read_acrima(root: str | Path) -> list[DiscPhoto]:
    base = Path(root) / "archive" / "Database" / "Images"
    if not base.is_dir():
        base = Path(root)
    return [DiscPhoto(p, "_g_" in p.name) for p in sorted(base.glob("*.jpg"))]


@dataclass(frozen=True)
class CataractPhoto:
    """CSDI (cataract severity): the set's 0-10 lens-opacity score, photos graded below 5."""
    path: Path
    score: float


def read_csdi(root: str | Path) -> list[CataractPhoto]:
    root = Path(root)
    return [CataractPhoto(root / r["path"], float(r["score"])) for r in _rows(root / "labels.csv")]


@dataclass(frozen=True)
class LookAlike:
    """A real photo of the front of the eye (what a person uploads by mistake), with the repository it came from."""
    path: Path
    source: str
    kind: str


def read_front_of_eye(root: str | Path) -> list[LookAlike]:
    root = Path(root)
    return [LookAlike(root / r["path"], r["source_repo"], r["kind"]) for r in _rows(root / "labels.csv")]


def circular_crop(rgb, size: int = 512):
    """The centre 90% square of the short side, masked to a circle on black, at ``size`` px: how phone and
    fundus-adapter apps frame a shot, and the form in which front-of-eye photos pass a fundus photo check."""
    import cv2
    import numpy as np

    h, w = rgb.shape[:2]
    side = int(0.9 * min(h, w))
    top, left = (h - side) // 2, (w - side) // 2
    square = cv2.resize(rgb[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - (size - 1) / 2) ** 2 + (xx - (size - 1) / 2) ** 2 <= (size / 2) ** 2
    return np.where(inside[..., None], square, 0).astype(np.uint8)


def circle_files(photos: list[LookAlike], folder: str | Path) -> list[Path]:
    """Each look-alike cut to a circle on black (:func:`circular_crop`), written once as PNG into ``folder`` (a
    cache outside the data, made again when missing)."""
    import cv2

    from clarityx.screening.files import atomic_path
    from clarityx.screening.imageio import load_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in photos:
        target = folder / f"{p.path.stem}.png"
        if not target.is_file():
            with atomic_path(target) as tmp:
                cv2.imwrite(str(tmp), cv2.cvtColor(circular_crop(load_image(p.path)), cv2.COLOR_RGB2BGR))
        out.append(target)
    return out
