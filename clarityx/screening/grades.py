"""Diabetic-retinopathy grades as model outputs, and the referable-DR score of any model.

A DR-grade model (``train.py --task dr-grade``, e.g. on APTOS 2019) has one output per grade of the
international scale: ``dr_grade_0`` (no retinopathy) to ``dr_grade_4`` (proliferative), the scale
EyePACS, APTOS and ODIR-5K's keywords share. Its answer is a grade, shown as a grade, not as a
disease name. Referable DR (moderate or worse, grade >= 2) is what a screening programme refers:
for a grade model its score is P(grade >= 2); for a conditions model it is P(diabetic_retinopathy).
Both are thresholded at the card's ``dr_threshold``, chosen on validation photos.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from clarityx.screening.classes import DIABETIC_RETINOPATHY, GRADE_PREFIX, GRADES

GRADE_CLASSES = tuple(c.key for c in GRADES)
REFERABLE_FROM = 2  # moderate NPDR or worse


def grade_of(name: str) -> int | None:
    """The DR grade a class name stands for (``dr_grade_3`` → 3), or None for any other class."""
    if name.startswith(GRADE_PREFIX) and name[len(GRADE_PREFIX):].isdigit():
        return int(name[len(GRADE_PREFIX):])
    return None


def is_grade_model(classes: Sequence[str]) -> bool:
    """True when every output of a model is a DR grade."""
    return bool(classes) and all(grade_of(c) is not None for c in classes)


def referable_columns(classes: Sequence[str]) -> list[int]:
    """The outputs whose probabilities add up to the referable-DR score (empty: the model has none)."""
    if is_grade_model(classes):
        return [i for i, c in enumerate(classes) if grade_of(c) >= REFERABLE_FROM]
    return [i for i, c in enumerate(classes) if c == DIABETIC_RETINOPATHY]


def referable_score_name(classes: Sequence[str]) -> str:
    """What the referable-DR score is for a model with these outputs, as a card prints it."""
    return f"P(grade ≥ {REFERABLE_FROM})" if is_grade_model(classes) else "P(diabetic retinopathy)"


def referable_scores(probs: np.ndarray, classes: Sequence[str]) -> np.ndarray | None:
    """Referable-DR score of every row of ``probs`` (N, C); None when the model has no DR output."""
    cols = referable_columns(classes)
    return np.asarray(probs)[:, cols].sum(axis=1) if cols else None


def referable_score(probabilities: Mapping[str, float]) -> float | None:
    """Referable-DR score of one photo's ``{class: probability}``; None when the model has no DR output."""
    scores = referable_scores(np.array([list(probabilities.values())]), list(probabilities))
    return None if scores is None else float(scores[0])


def referable_flag(probabilities: dict[str, float], threshold: float | None,
                   score: float | None = None) -> bool | None:
    """Is referable DR flagged at the card's threshold? ``score``: the result's referable score (its grade
    layer's P(grade >= 2), :attr:`clarityx.screening.pipeline.Result.referable_score`); without it, the score of
    these probabilities. None when the model has no referable-DR score or no threshold (the app, the batch
    table, the CSV and the CLI all ask here)."""
    if score is None:
        score = referable_score(probabilities) if probabilities else None
    return None if score is None or threshold is None else bool(score >= threshold)
