"""Load a trained model once; predict and explain (Grad-CAM) with compiled functions.

One compiled call runs the backbone once and returns, for a batch, the calibrated
class probabilities, the 512-d embedding (for the out-of-distribution gate) and
a Grad-CAM map per class taken at the last convolutional block. Grad-CAM needs
gradients only through the small head, so explaining every class costs little
more than predicting.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clarityx.errors import ModelNotInstalled
from clarityx.card import ModelCard, card_path
from clarityx.ood import MahalanobisModel, ood_path

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "clarityx_lite0.keras"
MODEL_ENV = "CLARITYX_MODEL"


def default_model_path() -> Path:
    """``$CLARITYX_MODEL`` if set, else the bundled model."""
    return Path(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)


def missing_model_message(path: Path) -> str:
    return (f"No trained model is installed at {path}. ClarityX will not guess with an untrained "
            "network. Get the bundled model with `git lfs pull`/a fresh clone of the repository, "
            "train one with `python train.py --data DATASET --output models/NAME.keras`, or point "
            f"{MODEL_ENV} (or --model) at a .keras file with its .card.json beside it.")


@dataclass
class Prediction:
    probabilities: np.ndarray  # (C,) calibrated
    embedding: np.ndarray      # (512,)
    cams: np.ndarray | None    # (C, h, w) in [0, 1], or None when not asked for


class CardedModel:
    """What every model file comes with: its card (classes, input size, temperature) and the
    gate's statistics. Subclasses add ``predict`` (and ``explain`` where they can)."""

    can_explain = False

    def __init__(self, path: str | Path | None) -> None:
        path = Path(path) if path else default_model_path()
        if not path.is_file() or not card_path(path).is_file():
            raise ModelNotInstalled(missing_model_message(path))
        self.path = path
        self.card = ModelCard.load(card_path(path))
        self.classes = list(self.card.classes)
        self.size = int(self.card.input_size)
        self.ood = MahalanobisModel.load(ood_path(path)) if ood_path(path).is_file() else None

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        """Apply the card's temperature to raw model probabilities."""
        from clarityx.metrics import apply_temperature
        return apply_temperature(probs, self.card.temperature, self.card.log_prior_correction)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """The photo as this model sees it (size and camera normalisation from its card)."""
        from clarityx.preprocess import prepare
        return prepare(rgb, self.size, self.card.contrast)

    def ood_distance(self, embedding: np.ndarray) -> float | None:
        return None if self.ood is None else float(self.ood.distance(embedding)[0])

    def ranked(self, probabilities: np.ndarray) -> list[tuple[str, float]]:
        """(class, probability) pairs, most probable first."""
        order = np.argsort(probabilities)[::-1]
        return [(self.classes[i], float(probabilities[i])) for i in order]


class Classifier(CardedModel):
    """A trained ClarityX model with its card, ready for repeated calls (thread-safe for reads)."""

    can_explain = True

    def __init__(self, path: str | Path | None = None, warm_up: bool = True) -> None:
        super().__init__(path)
        import keras
        import tensorflow as tf

        model = keras.saving.load_model(self.path, compile=False)
        backbone = model.get_layer("backbone")
        head = model.get_layer("head")
        embed = keras.Model(head.input, head.get_layer("embedding").output)
        kernel, bias = head.get_layer("probabilities").weights
        n_classes = len(self.classes)
        self._tf = tf

        def forward(x):
            fmap = backbone(x, training=False)
            emb = embed(fmap, training=False)
            return fmap, emb, tf.matmul(emb, kernel) + bias  # logits: dropout is off at inference

        @tf.function(reduce_retracing=True)
        def predict(x):
            _, emb, logits = forward(x)
            return tf.nn.softmax(logits), emb

        @tf.function(reduce_retracing=True)
        def explain(x):
            fmap = backbone(x, training=False)
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(fmap)
                emb = embed(fmap, training=False)
                logits = tf.matmul(emb, kernel) + bias
                scores = [logits[:, c] for c in range(n_classes)]
            cams = []
            for score in scores:
                grads = tape.gradient(score, fmap)
                weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
                cam = tf.nn.relu(tf.reduce_sum(fmap * weights, axis=-1))
                cams.append(cam / (tf.reduce_max(cam, axis=(1, 2), keepdims=True) + 1e-8))
            del tape
            return tf.nn.softmax(logits), emb, tf.stack(cams, axis=1)

        self._predict, self._explain = predict, explain
        if warm_up:  # trace now, not on the first person's photo (batch predict traces on first use)
            self.explain(np.zeros((self.size, self.size, 3), np.uint8))

    def _check(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim != 4 or pixels.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected (N, {self.size}, {self.size}, 3) prepared pixels, got {pixels.shape}")
        return self._tf.constant(pixels, self._tf.float32)

    def predict(self, pixels: np.ndarray) -> list[Prediction]:
        """Batch of prepared images (see :func:`clarityx.preprocess.prepare`) → predictions."""
        probs, emb = self._predict(self._check(pixels))
        probs = self.calibrate(probs.numpy())
        return [Prediction(p, e, None) for p, e in zip(probs, emb.numpy())]

    def explain(self, pixels: np.ndarray) -> Prediction:
        """One prepared image → prediction with a Grad-CAM map for every class."""
        probs, emb, cams = self._explain(self._check(pixels[None]))
        return Prediction(self.calibrate(probs.numpy())[0], emb.numpy()[0], cams.numpy()[0])


def overlay(rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a Grad-CAM map (any size, values in [0, 1]) over an RGB image with OpenCV's JET map.

    Only the field of view is coloured; the black border around a fundus photo stays black.
    """
    import cv2

    from clarityx.preprocess import fov_mask

    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be between 0 and 1")
    h, w = rgb.shape[:2]
    heat = cv2.resize(np.clip(cam, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    blended = cv2.addWeighted(rgb, 1 - alpha, colour, alpha, 0)
    return np.where(fov_mask(rgb)[..., None], blended, rgb)
