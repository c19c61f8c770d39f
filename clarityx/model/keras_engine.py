"""The TensorFlow engine: a ``.keras`` model run with compiled functions (training, evaluation,
export, and the fallback when a model has no ONNX graph beside it).

One compiled call runs the backbone once and returns, for a batch, the class probabilities,
the 512-d embedding (for the out-of-distribution gate) and, when asked, a Grad-CAM map per
class taken at the last convolutional block. Grad-CAM needs gradients only through the small
head, so explaining every class costs little more than predicting. This is the reference the
ONNX engine's closed-form Grad-CAM is tested against.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from clarityx.screening.engine import REINSTALL, CardedModel, Prediction
from clarityx.screening.errors import ModelUnreadable


class Classifier(CardedModel):
    """A trained ClarityX ``.keras`` model with its card, ready for repeated calls (thread-safe for reads)."""

    can_explain = True
    engine = "keras"

    def __init__(self, path: str | Path | None = None, warm_up: bool = True) -> None:
        super().__init__(path)
        import keras
        import tensorflow as tf

        try:
            model = keras.saving.load_model(self.path, compile=False)
            backbone = model.get_layer("backbone")
            head = model.get_layer("head")
        except Exception as exc:  # zip, HDF5 and deserialisation errors of a damaged or foreign file
            raise ModelUnreadable(f"{self.path.name} is not a ClarityX model or is damaged "
                                  f"({type(exc).__name__}: {str(exc)[:200]}). {REINSTALL}") from exc
        self.check_matches_card(model.input_shape, model.output_shape[-1])
        embed = keras.Model(head.input, head.get_layer("embedding").output)
        kernel, bias = head.get_layer("probabilities").weights
        n_classes = len(self.classes)

        @tf.function(reduce_retracing=True)
        def predict(x):
            emb = embed(backbone(x, training=False), training=False)
            return tf.nn.softmax(tf.matmul(emb, kernel) + bias), emb  # dropout is off at inference

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

    def predict(self, pixels: np.ndarray, explain: bool = False) -> list[Prediction]:
        """Batch of prepared images (see :func:`clarityx.screening.preprocess.prepare`) → predictions;
        with ``explain`` each carries a Grad-CAM map per class."""
        x = self.check_pixels(pixels)
        if explain:
            probs, emb, cams = (t.numpy() for t in self._explain(x))
        else:
            probs, emb = (t.numpy() for t in self._predict(x))
            cams = [None] * len(probs)
        return [Prediction(p, e, c) for p, e, c in zip(self.calibrate(probs), emb, cams)]
