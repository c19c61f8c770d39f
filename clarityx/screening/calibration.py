"""Turning a model's raw probabilities into calibrated ones, as its card says.

The temperature and the prior correction are fitted at training time (``train.py``, on the
calibration split); this is the part inference needs, kept free of scikit-learn and TensorFlow.

Temperature scaling: C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of Modern
Neural Networks", ICML 2017 (arXiv:1706.04599): one scalar T > 0 divides every logit,
softmax(z / T), fitted by minimising the negative log-likelihood on held-out data; it changes no
ranking, only confidence. Here the logits are the log-probabilities (plus the prior correction).
"""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def apply_temperature(probs: np.ndarray, temperature: float, log_prior_correction=None) -> np.ndarray:
    """Rescale probabilities as softmax((log p + b) / T). T > 1 softens, T < 1 sharpens.

    ``log_prior_correction`` (b, one per class) undoes the prior shift that class weighting causes:
    a model trained with weight w_c learns p(c|x)·w_c (up to normalisation), so b_c = −log w_c.
    """
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    if log_prior_correction is not None:
        logp = logp + np.asarray(log_prior_correction, dtype=np.float64)
    return softmax(logp / temperature)
