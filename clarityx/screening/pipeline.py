"""From a photo to a screening result: decode → gate → prepare → classify (→ Grad-CAM).

The app, the CLI and ``clarityx evaluate`` all go through :func:`analyse`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clarityx.screening.errors import ImageRejected
from clarityx.screening.gate import Rejection, check_image, check_embedding
from clarityx.screening.grades import grade_of
from clarityx.screening.imageio import Source, load_image
from clarityx.screening.limits import DEFAULT_GATE, GateSettings
from clarityx.screening.engine import CardedModel, Prediction


@dataclass
class Result:
    status: str                           # "ok" | "rejected" | "error"
    message: str | None = None
    reason: str | None = None             # short code of a rejection
    rgb: np.ndarray | None = None         # the decoded photo
    pixels: np.ndarray | None = None      # what the model saw
    prediction: Prediction | None = None
    ranked: list[tuple[str, float]] = field(default_factory=list)

    @property
    def top(self) -> str | None:
        return self.ranked[0][0] if self.ranked else None

    def as_json(self, path: str) -> dict:
        return {
            "path": path,
            "status": self.status,
            "top": self.top,
            "grade": grade_of(self.top) if self.top else None,  # a DR-grade model's answer, 0-4
            "probabilities": {c: round(p, 6) for c, p in self.ranked} if self.ranked else None,
            "message": self.message,
        }


def rejected(rejection: Rejection, rgb: np.ndarray | None = None) -> Result:
    return Result("rejected", rejection.message, rejection.reason, rgb=rgb)


def decode(source: Source, settings: GateSettings = DEFAULT_GATE) -> tuple[np.ndarray | None, Result | None]:
    """Decode a photo within ``settings``' size limits; on failure return the rejection result instead."""
    try:
        return load_image(source, max_bytes=settings.max_file_bytes, max_pixels=settings.max_pixels,
                          min_side=settings.min_side), None
    except ImageRejected as exc:
        return None, Result("rejected", str(exc), type(exc).__name__)


def gate_and_prepare(rgb: np.ndarray, classifier: CardedModel) -> tuple[np.ndarray | None, Result | None]:
    rejection = check_image(rgb, classifier.card.gate_settings)
    if rejection:
        return None, rejected(rejection, rgb)
    return classifier.prepare(rgb), None


def missing_file(name: str) -> Result:
    """The row of a named file that does not exist."""
    return Result("error", f"No such file or folder: {name}")


def prepare_file(path: str | Path, classifier: CardedModel, name: str | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray | None, Result | None]:
    """A named file → (photo, model input, None), or its refusal (…, None, Result). Never raises: a missing,
    unreadable or unexpected file is a row (``name``: how the row names the file; default ``path``)."""
    if not os.path.exists(path):
        return None, None, missing_file(str(name or path))
    try:
        rgb, failed = decode(path, classifier.card.gate_settings)
        if failed:
            return None, None, failed
        pixels, failed = gate_and_prepare(rgb, classifier)
        return rgb, pixels, failed
    except Exception as exc:  # one bad file never stops a run
        return None, None, Result("error", f"{type(exc).__name__}: {exc}")


def finish(classifier: CardedModel, rgb: np.ndarray, pixels: np.ndarray, prediction: Prediction) -> Result:
    rejection = check_embedding(classifier, prediction.embedding)
    if rejection:
        return Result("rejected", rejection.message, rejection.reason, rgb=rgb, pixels=pixels)
    return Result("ok", None, None, rgb, pixels, prediction, classifier.ranked(prediction.probabilities))


def analyse(classifier: CardedModel, source: Source, explain: bool = True) -> Result:
    """One photo, all the way. Never raises for a bad photo: returns a rejected Result."""
    rgb, failed = decode(source, classifier.card.gate_settings)
    if failed:
        return failed
    pixels, failed = gate_and_prepare(rgb, classifier)
    if failed:
        return failed
    prediction = classifier.explain(pixels) if explain else classifier.predict(pixels[None])[0]
    return finish(classifier, rgb, pixels, prediction)
