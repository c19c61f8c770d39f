"""What the app answers beside the classes, from a model card's ``answers`` (run time: NumPy only).

- **DR grade** (``dr_grade``): a softmax layer on the embedding, learnt with the classes (multi-task) from every
  graded eye; its P(grade ≥ 2) is the referable-DR score the flag thresholds. A model without it scores
  referable DR by P(diabetic retinopathy), as before (:func:`clarityx.screening.grades.referable_score`).
- **Haze** (``haze``): a clouded lens (cataract) shows as a dim, yellow, low-contrast view whose fine vessels fade.
  The contrast step the model reads through removes exactly that, so haze is judged on the photo *as taken*: a
  logistic check over the gate's measures and the model's P(cataract). A hazy photo is a reason to see an eye
  doctor, not to retake it.
- **Front of the eye** (``front_of_eye``): a logistic probe on the embedding, fitted on real photos of the front
  of the eye (iris, pupil, slit lamp, eyelids), as taken and cut to a circle on black, against fundus photos.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from clarityx.screening.grades import REFERABLE_FROM

# The gate measures the haze check reads, in its order, then log P(cataract) (clarityx.training.answers).
HAZE_MEASURES = ("sharpness", "contrast", "brightness", "blue_share", "red_share")


def _logistic(entry: Mapping, x: np.ndarray) -> float:
    z = (np.asarray(x, np.float64) - np.asarray(entry["mean"])) / np.asarray(entry["sd"])
    return float(1.0 / (1.0 + np.exp(-(z @ np.asarray(entry["weights"]) + entry["bias"]))))


def grade_probabilities(answers: Mapping, embedding: np.ndarray) -> np.ndarray | None:
    """P(DR grade 0..4) of one photo from its embedding; None when the model has no grade layer."""
    entry = answers.get("dr_grade")
    if not entry:
        return None
    logits = (np.asarray(embedding, np.float64) @ np.asarray(entry["weights"]) + np.asarray(entry["bias"]))
    z = logits / entry["temperature"]
    e = np.exp(z - z.max())
    return e / e.sum()


def referable_from_grades(grades: np.ndarray) -> float:
    """P(grade ≥ 2): moderate non-proliferative retinopathy or worse, what a screening programme refers."""
    return float(np.asarray(grades)[REFERABLE_FROM:].sum())


def haze_score(answers: Mapping, measures: Mapping[str, float], p_cataract: float) -> float | None:
    """How likely the view is hazy (0-1); None when the model has no haze check."""
    entry = answers.get("haze")
    if not entry:
        return None
    x = [measures[k] for k in HAZE_MEASURES] + [float(np.log(np.clip(p_cataract, 1e-6, 1.0)))]
    return _logistic(entry, np.array(x))


def is_hazy(answers: Mapping, measures: Mapping[str, float], p_cataract: float) -> bool:
    score = haze_score(answers, measures, p_cataract)
    return score is not None and score >= answers["haze"]["threshold"]


def looks_like_front_of_eye(answers: Mapping, embedding: np.ndarray) -> bool:
    """Does the embedding say "a photo of the front of the eye"? False when the model has no probe."""
    entry = answers.get("front_of_eye")
    return bool(entry) and _logistic(entry, embedding) >= entry["threshold"]
