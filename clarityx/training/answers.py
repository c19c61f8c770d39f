"""Each answer the app gives, fitted where it may be and checked where it was not fitted.

v4 was chosen on two figures and every answer they did not measure went wrong on photos from other hospitals.
These functions fit and measure the rest, one answer each, on arrays (no TensorFlow):

- the referable-DR operating point, fitted on validation plus one outside set and reported on the other
  (:func:`leave_one_set_out`);
- the glaucoma operating point: a bias on the glaucoma log-probability that keeps normal eyes called glaucoma
  at or under a limit (:func:`glaucoma_bias`);
- haze, the sign of a clouded lens: a logistic regression on the photo as taken (brightness, contrast, colour,
  fine detail) and the model's P(cataract) (:func:`fit_haze`), because the contrast step the model reads
  through removes the haze;
- real look-alikes: a logistic probe on the embedding that tells front-of-eye photos from fundus photos
  (:func:`fit_front_of_eye_probe`), fitted on some sources of real front-of-eye photos and measured on the
  others (:func:`by_source_folds`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clarityx.training.metrics import threshold_for_sensitivity

# The sensitivity the referable-DR operating point keeps (the first FDA-cleared autonomous DR system's, 87.2%).
REFERABLE_SENSITIVITY = 0.87
# At most this share of normal validation eyes may be called glaucoma.
GLAUCOMA_NORMAL_LIMIT = 0.05
# At most this share of validation eyes without cataract may be called hazy.
HAZE_FALSE_LIMIT = 0.05
# At most this share of validation fundus photos may be refused as front of the eye.
FRONT_FALSE_LIMIT = 0.002
# The gate measures (clarityx.screening.gate.measure) the haze check reads, on the photo as taken.
from clarityx.screening.answers import HAZE_MEASURES  # noqa: E402  (one list, read at run time)


def sens_spec(flagged: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    flagged, positive = np.asarray(flagged, bool), np.asarray(positive, bool)
    return float(flagged[positive].mean()), float((~flagged[~positive]).mean())


def leave_one_set_out(val_scores: np.ndarray, val_positive: np.ndarray, sets: dict[str, tuple[np.ndarray, np.ndarray]],
                      sensitivity: float = REFERABLE_SENSITIVITY) -> dict:
    """The referable threshold fitted on validation plus every set but one, reported on the one left out.

    Parameters
    ----------
    val_scores, val_positive : validation referable scores and truth (graded eyes).
    sets : ``{name: (scores, positive)}`` of each outside set (healthy and referable eyes only).
    sensitivity : the sensitivity the fitted threshold keeps on the photos it is fitted on.

    Returns
    -------
    ``{"left_out": {name: {"threshold", "sensitivity", "specificity"}}, "shipped": threshold on all}``.
    """
    out = {}
    for name in sets:
        fit_s = np.concatenate([val_scores] + [sets[o][0] for o in sets if o != name])
        fit_p = np.concatenate([val_positive] + [sets[o][1] for o in sets if o != name])
        t = threshold_for_sensitivity(fit_s, fit_p, sensitivity)
        sens, spec = sens_spec(sets[name][0] >= t, sets[name][1])
        out[name] = {"threshold": t, "sensitivity": sens, "specificity": spec}
    all_s = np.concatenate([val_scores] + [s for s, _ in sets.values()])
    all_p = np.concatenate([val_positive] + [p for _, p in sets.values()])
    return {"left_out": out, "shipped": threshold_for_sensitivity(all_s, all_p, sensitivity)}


def glaucoma_bias(probs: np.ndarray, labels: np.ndarray, glaucoma: int, normal: int,
                  limit: float = GLAUCOMA_NORMAL_LIMIT, steps=np.linspace(0.0, 4.0, 41)) -> float:
    """The largest bias on the glaucoma log-probability (0 to 4) that calls at most ``limit`` of the normal eyes
    glaucoma (validation photos): more glaucoma found, a bounded cost to healthy eyes."""
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    best = 0.0
    for b in steps:
        shifted = logp.copy()
        shifted[:, glaucoma] += b
        called = shifted.argmax(1) == glaucoma
        if called[labels == normal].mean() <= limit:
            best = float(b)
    return best


@dataclass
class LinearCheck:
    """A logistic check: ``sigmoid(((x - mean) / sd) @ weights + bias) >= threshold``."""
    mean: np.ndarray
    sd: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float

    def score(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.sd
        return 1.0 / (1.0 + np.exp(-(z @ self.weights + self.bias)))

    def to_card(self) -> dict:
        return {"mean": self.mean.tolist(), "sd": self.sd.tolist(), "weights": self.weights.tolist(),
                "bias": float(self.bias), "threshold": float(self.threshold)}


def _logistic(x: np.ndarray, y: np.ndarray, C: float, balanced: bool = True):
    """(mean, sd, weights, bias) of a logistic regression on standardised ``x``."""
    from sklearn.linear_model import LogisticRegression

    mean, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    lr = LogisticRegression(C=C, max_iter=5000, class_weight="balanced" if balanced else None)
    lr.fit((x - mean) / sd, y.astype(int))
    return mean, sd, lr.coef_[0], float(lr.intercept_[0])


def haze_inputs(measures: dict[str, np.ndarray], p_cataract: np.ndarray) -> np.ndarray:
    """The haze check's inputs: the gate measures of the photo as taken and log P(cataract)."""
    return np.column_stack([np.asarray(measures[k], np.float64) for k in HAZE_MEASURES]
                           + [np.log(np.clip(p_cataract, 1e-6, 1.0))])


def fit_haze(x_train: np.ndarray, cataract_train: np.ndarray, x_val: np.ndarray, cataract_val: np.ndarray,
             limit: float = HAZE_FALSE_LIMIT, C: float = 1.0) -> LinearCheck:
    """Haze: fitted on training photos (cataract against every other labelled eye), its threshold on validation
    so that at most ``limit`` of the eyes without cataract are called hazy."""
    mean, sd, w, b = _logistic(x_train, cataract_train, C)
    check = LinearCheck(mean, sd, w, b, 1.0)
    s = check.score(x_val[~np.asarray(cataract_val, bool)])
    check.threshold = float(np.quantile(s, 1 - limit))
    return check


def fit_front_of_eye_probe(fundus: np.ndarray, look_alikes: np.ndarray, fundus_val: np.ndarray,
                           limit: float = FRONT_FALSE_LIMIT, C: float = 0.05) -> LinearCheck:
    """A logistic probe on the embedding: real front-of-eye photos against fundus photos (training ones), its
    threshold the highest score of validation fundus photos allowed through at ``limit``."""
    x = np.concatenate([fundus, look_alikes])
    y = np.concatenate([np.zeros(len(fundus)), np.ones(len(look_alikes))])
    mean, sd, w, b = _logistic(x, y, C)
    check = LinearCheck(mean, sd, w, b, 1.0)
    check.threshold = float(max(0.5, np.quantile(check.score(fundus_val), 1 - limit)))
    return check


def by_source_folds(sources: list[str], folds: int = 3) -> list[np.ndarray]:
    """Boolean masks of held-out rows, whole sources per fold (largest first, dealt round-robin)."""
    names, counts = np.unique(sources, return_counts=True)
    order = names[np.argsort(-counts, kind="stable")]
    assign = {n: i % folds for i, n in enumerate(order)}
    s = np.asarray(sources)
    return [np.array([assign[x] == f for x in s]) for f in range(folds)]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
