"""Out-of-distribution score from the classifier's own embedding (Mahalanobis distance).

Fitted during training: one mean per class and a shared, shrunk covariance of the
512-d embedding over the training images. A photo far from every class mean (in
that metric) is unlike anything the model was trained on.

The method: K. Lee, K. Lee, H. Lee and J. Shin, "A Simple Unified Framework for Detecting
Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018 (arXiv:1807.03888) — class-
conditional Gaussians with a tied covariance on a network's features, scored by the distance to the
closest class mean. Used here on the penultimate embedding only, without their input
pre-processing or multi-layer ensemble; the shrinkage of the covariance is ours.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class MahalanobisModel:
    means: np.ndarray      # (classes, d)
    precision: np.ndarray  # (d, d)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, shrinkage: float = 0.1) -> "MahalanobisModel":
        classes = np.unique(labels)
        means = np.stack([features[labels == c].mean(axis=0) for c in classes])
        centred = features - means[np.searchsorted(classes, labels)]
        cov = centred.T @ centred / max(len(features) - 1, 1)
        # Shrink towards the diagonal's mean: the embedding is 512-d, the classes small.
        # (a floor on the scale: constant embeddings, e.g. of an untrained network, still give an inverse)
        cov = (1 - shrinkage) * cov + shrinkage * np.eye(len(cov)) * max(np.trace(cov) / len(cov), 1e-6)
        return cls(means.astype(np.float32), np.linalg.inv(cov).astype(np.float32))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Minimum over classes of the squared Mahalanobis distance, square-rooted."""
        features = np.atleast_2d(features).astype(np.float32)
        d = features[:, None, :] - self.means[None, :, :]
        sq = np.einsum("ncd,de,nce->nc", d, self.precision, d)
        return np.sqrt(np.maximum(sq.min(axis=1), 0.0))

    def save(self, path: str | Path) -> None:
        """Written whole or not at all (:func:`clarityx.screening.files.atomic_path`): a run that is stopped
        or a full disk leaves the previous statistics, never a half-written file."""
        from clarityx.screening.files import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: numpy adds no second .npz
            np.savez_compressed(f, means=self.means, precision=self.precision)

    @classmethod
    def load(cls, path: str | Path) -> "MahalanobisModel":
        with np.load(path) as data:
            return cls(data["means"], data["precision"])


def ood_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".ood.npz")


def ood_check_off(model_path: str | Path, limit: float | None) -> str | None:
    """Why the out-of-distribution check cannot run for this model (its statistics file is missing), for a
    person; None when nothing is missing. (A card without a limit turns the check off by design: then the
    missing file changes nothing and this says nothing.)"""
    if limit is None:
        return None
    stats = ood_path(model_path)
    return (f"the out-of-distribution check is OFF: {stats.name} is missing beside {Path(model_path).name}, so "
            "photos unlike anything the model was trained on are not refused and get an answer anyway. Put the "
            "model's .ood.npz back beside it (it is written by train.py and copied by clarityx export).")


def model_ood_off(model_path: str | Path, card) -> str | None:
    """:attr:`clarityx.screening.engine.CardedModel.ood_off` of the model at ``model_path`` with this card, read
    without loading the model (the sidebar asks before the model has loaded)."""
    if ood_path(model_path).is_file():
        return None
    return ood_check_off(model_path, card.gate_settings.max_ood_distance)


def ood_off_warning(ood_off: str | None) -> str | None:
    """The warning said wherever a person reads a model's answers while its out-of-distribution check is off (the
    Model page, the sidebar beside the untested-model note, the visit report's caveat); None when it is on.
    ``ood_off``: the model's :attr:`~clarityx.screening.engine.CardedModel.ood_off`."""
    if not ood_off:
        return None
    return "Safety check off: " + ood_off[0].upper() + ood_off[1:]
