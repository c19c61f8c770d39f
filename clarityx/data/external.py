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
