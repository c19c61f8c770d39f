"""From a photo to a screening result: decode → gate → prepare → classify (→ Grad-CAM).

The app, the CLI and ``clarityx evaluate`` all go through :func:`analyse`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clarityx.screening import answers
from clarityx.screening.errors import ImageRejected
from clarityx.screening.gate import REFER, Rejection, check_embedding, inspect, measure
from clarityx.screening.grades import grade_of, referable_score
from clarityx.screening.imageio import Source, load_image
from clarityx.screening.limits import DEFAULT_GATE, GateSettings
from clarityx.screening.preprocess import field_of_view
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
    grades: list[float] | None = None     # P(DR grade 0..4), where the model has a grade layer
    referable_score: float | None = None  # P(grade >= 2), or P(diabetic retinopathy); None: no DR output
    hazy: bool = False                    # the view is hazy, as a clouded lens makes it: see an eye doctor
    measures: dict[str, float] | None = None  # the gate's measures of the photo as taken

    @property
    def top(self) -> str | None:
        return self.ranked[0][0] if self.ranked else None

    @property
    def grade(self) -> int | None:
        """The estimated DR grade (0-4): a grade model's answer, or a conditions model's grade layer."""
        if self.grades is not None:
            return int(np.argmax(self.grades))
        return grade_of(self.top) if self.top else None

    @property
    def refer(self) -> bool:
        """A reason to see an eye doctor that is not a disease's probability: a hazy view (accepted or not)."""
        return self.hazy or (self.status == "rejected" and self.reason in REFER)

    def as_json(self, path: str) -> dict:
        return {
            "path": path,
            "status": self.status,
            "top": self.top,
            "grade": self.grade,  # the estimated DR grade, 0-4
            "grade_probabilities": [round(p, 6) for p in self.grades] if self.grades is not None else None,
            "probabilities": {c: round(p, 6) for c, p in self.ranked} if self.ranked else None,
            "referable_score": None if self.referable_score is None else round(self.referable_score, 6),
            "hazy": self.hazy,
            "see_eye_doctor_for_haze": self.refer,
            "message": self.message,
        }


def rejected(rejection: Rejection, rgb: np.ndarray | None = None, measures: dict | None = None) -> Result:
    return Result("rejected", rejection.message, rejection.reason, rgb=rgb, measures=measures)


def decode(source: Source, settings: GateSettings = DEFAULT_GATE) -> tuple[np.ndarray | None, Result | None]:
    """Decode a photo within ``settings``' size limits; on failure return the rejection result instead.

    At full resolution: a JPEG decoded at a reduced scale (``load_image(shrink_to=imageio.SCREEN_SIDE)``) is 3×
    faster for an 8 MP photo, but it moved model v5's answer on a real fundus photo by 0.07 — 11 times what one
    more JPEG re-save moves it (tests/test_one_look.py) — so the app does not use it."""
    try:
        return load_image(source, max_bytes=settings.max_file_bytes, max_pixels=settings.max_pixels,
                          min_side=settings.min_side), None
    except ImageRejected as exc:
        return None, Result("rejected", str(exc), type(exc).__name__)


def gate_and_prepare(rgb: np.ndarray, classifier: CardedModel) -> tuple[np.ndarray | None, Result | None]:
    pixels, failed, _ = gate_measure_prepare(rgb, classifier)
    return pixels, failed


def gate_measure_prepare(rgb: np.ndarray, classifier: CardedModel
                         ) -> tuple[np.ndarray | None, Result | None, dict[str, float]]:
    """The image test, the measures it read (the haze check reads them again) and the model's input: the
    field of view is found once, with the card's threshold, and the gate and ``prepare`` read the same crop."""
    view = field_of_view(rgb, classifier.card.gate_settings.fov_threshold)
    rejection, measures = inspect(view, classifier.card.gate_settings)
    if rejection:
        return None, rejected(rejection, rgb, measures), measures
    return classifier.prepare(view), None, measures


def missing_file(name: str) -> Result:
    """The row of a named file that does not exist."""
    return Result("error", f"No such file or folder: {name}")


def prepare_file(path: str | Path, classifier: CardedModel, name: str | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray | None, Result | None, dict[str, float] | None]:
    """A named file → (photo, model input, None, the gate's measures), or its refusal (…, None, Result, …).
    Never raises: a missing, unreadable or unexpected file is a row (``name``: how the row names the file;
    default ``path``). The measures go on to :func:`finish` (the haze check reads them): the photo is looked at
    once, even where the model runs elsewhere (Ray)."""
    if not os.path.exists(path):
        return None, None, missing_file(str(name or path)), None
    try:
        rgb, failed = decode(path, classifier.card.gate_settings)
        if failed:
            return None, None, failed, None
        pixels, failed, measures = gate_measure_prepare(rgb, classifier)
        return rgb, pixels, failed, measures
    except Exception as exc:  # one bad file never stops a run
        return None, None, Result("error", f"{type(exc).__name__}: {exc}"), None


def finish(classifier: CardedModel, rgb: np.ndarray, pixels: np.ndarray, prediction: Prediction,
           measures: dict[str, float] | None = None) -> Result:
    """The tests on the embedding, then the answers: the ranked classes, the DR grade and referable score, and
    whether the view is hazy (on the photo as taken: ``measures``, measured again when not given)."""
    rejection = check_embedding(classifier, prediction.embedding)
    if rejection:
        return Result("rejected", rejection.message, rejection.reason, rgb=rgb, pixels=pixels, measures=measures)
    ranked = classifier.ranked(prediction.probabilities)
    card_answers = classifier.card.answers
    grades = answers.grade_probabilities(card_answers, prediction.embedding)
    if grades is not None:
        score = answers.referable_from_grades(grades)
    else:
        score = referable_score(dict(ranked))
    hazy = False
    if "haze" in card_answers and "cataract" in classifier.classes:
        if measures is None:
            if rgb is None:
                raise ValueError("finish() needs the photo or its measures for the haze check")
            measures = measure(rgb, classifier.card.gate_settings)
        hazy = answers.is_hazy(card_answers, measures, dict(ranked)["cataract"])
    return Result("ok", None, None, rgb, pixels, prediction, ranked,
                  grades=None if grades is None else [float(g) for g in grades], referable_score=score, hazy=hazy,
                  measures=measures)


def analyse(classifier: CardedModel, source: Source, explain: bool = True) -> Result:
    """One photo, all the way. Never raises for a bad photo: returns a rejected Result."""
    rgb, failed = decode(source, classifier.card.gate_settings)
    if failed:
        return failed
    pixels, failed, measures = gate_measure_prepare(rgb, classifier)
    if failed:
        return failed
    prediction = classifier.explain(pixels) if explain else classifier.predict(pixels[None])[0]
    return finish(classifier, rgb, pixels, prediction, measures)
