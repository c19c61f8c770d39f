"""The model card: everything a user (and the app) needs to know about a trained model.

Kept free of TensorFlow so the app can read it before the model has loaded.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clarityx.screening.classes import CLASSES, DIABETIC_RETINOPATHY, UNRECOGNISED
from clarityx.screening.grades import is_grade_model

CARD_SUFFIX = ".card.json"


def _names(classes) -> str:
    return ", ".join(c.replace("_", " ") for c in classes)


def default_intended_use(classes, data: str | None = None) -> str:
    """What a model with these outputs is for, in a user's words (``data``: what it was trained on, for a
    model trained on a person's own photos; the bundled model's words otherwise)."""
    if data:
        return (f"Trained on {data}: ranks how much a retinal fundus photograph resembles each of "
                f"{_names(classes)}, for the people and cameras that data comes from. Not a diagnosis; it cannot "
                "rule disease out.")
    if is_grade_model(classes):
        return ("Screening aid for adults with diabetes at home: grades how much diabetic retinopathy a retinal "
                "fundus photograph shows (0 none, 1 mild, 2 moderate, 3 severe, 4 proliferative) and flags "
                "possible referable retinopathy (grade 2 or worse). Not a diagnosis; it cannot rule disease out.")
    return ("Screening aid for adults at home: ranks how much a retinal fundus photograph resembles "
            f"each of {_names(classes)}"
            + (" and flags possible referable diabetic retinopathy" if DIABETIC_RETINOPATHY in classes else "")
            + ". Not a diagnosis; it cannot rule disease out.")


def default_limitations(classes, camera_probe: bool = True, public_data: bool = True) -> list[str]:
    """The limitations every card of a model with these outputs states (``camera_probe``: the card has a
    camera probe to point to; ``public_data``: trained on the public research collections)."""
    out = ["A screening aid, not a diagnosis: it can miss disease and raise false alarms; it cannot rule "
           "disease out."]
    if is_grade_model(classes):
        out.append("Grades diabetic retinopathy only. Other eye conditions (cataract, glaucoma, macular "
                   f"degeneration, {UNRECOGNISED}) are not recognised: grade 0 means no retinopathy was "
                   "seen, not a healthy eye.")
    else:
        out.append(f"Knows {len(classes)} classes ({_names(classes)}). Other conditions — {UNRECOGNISED} — "
                   "are not recognised and may be called 'normal'; the card says how often.")
    out.append(("Trained on public research photos from a few cameras and hospitals" if public_data else
                "Trained on one dataset's photos") + "; accuracy on other cameras, smartphone adapters and "
               "populations is unknown and likely lower.")
    if camera_probe:
        out.append("The model can still tell the camera apart (see the camera probe in the card): some of what it "
                   "learned may be the camera rather than the disease.")
    if DIABETIC_RETINOPATHY in classes:
        out.append("Diabetic retinopathy is detected, not graded; referable retinopathy (moderate or worse) is "
                   "flagged at a threshold chosen for 90% sensitivity on validation photos, and mild "
                   "retinopathy is often missed.")
    out.append("Probabilities are rescaled by a temperature fitted on held-out photos of the same data; the "
               "card's calibration error (ECE) on test photos says how far they can be taken at face value. "
               "They are not calibrated for other populations.")
    return out


LIMITATIONS = default_limitations(CLASSES)


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
    intended_use: str = default_intended_use(CLASSES)
    limitations: list[str] = field(default_factory=lambda: list(LIMITATIONS))
    data: dict = field(default_factory=dict)
    audit: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    comparison: list[dict] = field(default_factory=list)
    gate: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        from clarityx.screening.files import write_text

        write_text(path, json.dumps(asdict(self), indent=2) + "\n")

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


