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


