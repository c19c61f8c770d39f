"""The model card: everything a user (and the app) needs to know about a trained model.

Kept free of TensorFlow so the app can read it before the model has loaded.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CARD_SUFFIX = ".card.json"

LIMITATIONS = [
    "A screening aid, not a diagnosis: it can miss disease and raise false alarms; it cannot rule disease out.",
    "Knows six classes (normal, cataract, diabetic retinopathy, glaucoma, age-related macular degeneration, "
    "pathological myopia). Other conditions — hypertensive retinopathy, vein occlusion, epiretinal membrane, "
    "retinal detachment, tumours — are not recognised and may be called 'normal'; the card says how often.",
    "Trained on public research photos from a few cameras and hospitals (ODIR-5K, EyePACS and others); "
    "accuracy on other cameras, smartphone adapters and populations is unknown and likely lower.",
    "The model can still tell the camera apart (see the camera probe in the card): some of what it learned "
    "may be the camera rather than the disease.",
    "Diabetic retinopathy is detected, not graded; referable retinopathy (moderate or worse) is flagged at a "
    "threshold chosen for 90% sensitivity on validation photos, and mild retinopathy is often missed.",
    "Probabilities are calibrated on held-out photos of the same data; they are not calibrated for other "
    "populations.",
]


def data_decisions(dr_grade0: str, dr_ungraded: str, keep_augmented: bool) -> list[str]:
    """How the known defects of the training data were handled, in words, for the card."""
    from clarityx.audit import NEAR_DUPLICATE_COSINE, VESSEL_COSINE

    grade0 = {"normal": "relabelled normal (so the normal class spans two cameras, not one)",
              "drop": "dropped", "keep": "kept as diabetic retinopathy"}[dr_grade0]
    return [
        "Both eyes of a patient (and every photo of one) stay in one split; two eyes may carry different "
        "labels and are kept.",
        f"Exact and near-duplicate photos (colour cosine > {NEAR_DUPLICATE_COSINE} and vessel cosine > "
        f"{VESSEL_COSINE} on 64 px thumbnails, flips and rotations included) are grouped the same way.",
        "One photo (or its near-duplicates) under different labels is dropped from every split.",
        "A photo reached through two datasets (eye_diseases' ODIR files are ODIR-5K files) is read once, "
        "with ODIR-5K's per-eye label.",
        "Pre-made augmented copies are " + ("used for training only." if keep_augmented else "excluded."),
        f"Diabetic-retinopathy photos whose public EyePACS grade is 0 (no DR) are {grade0}.",
        "Diabetic-retinopathy photos without a public grade are "
        + ("dropped: most graded ones are grade 0, so their label cannot be trusted."
           if dr_ungraded == "drop" else "kept (their labels are noisy)."),
        "Splits are stratified by (label, source), and metrics are reported per source.",
    ]


@dataclass
class ModelCard:
    """Everything a user (and the app) needs to know about a trained model."""

    name: str
    classes: list[str]
    input_size: int
    backbone: str
    architecture: str
    initialisation: str
    version: str = "0"
    temperature: float = 1.0
    log_prior_correction: list[float] | None = None  # undoes class weighting (see metrics.apply_temperature)
    contrast: str = "none"                            # preprocess.prepare's camera normalisation
    dr_threshold: float | None = None                 # P(DR) from which referable DR is flagged
    calibration: dict = field(default_factory=dict)
    intended_use: str = (
        "Screening aid for adults at home: ranks how much a retinal fundus photograph resembles "
        "each class and flags possible referable diabetic retinopathy. Not a diagnosis; it cannot rule "
        "disease out.")
    limitations: list[str] = field(default_factory=lambda: list(LIMITATIONS))
    data: dict = field(default_factory=dict)
    audit: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    comparison: list[dict] = field(default_factory=list)
    gate: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        data = json.loads(Path(path).read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def card_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + CARD_SUFFIX)


def markdown_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".card.md")


