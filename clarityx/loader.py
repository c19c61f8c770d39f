"""Pick the engine for a model file: ONNX Runtime when it can, TensorFlow only when it must.

- ``NAME.onnx`` → the ONNX engine (no TensorFlow is imported).
- ``NAME.keras`` with an ONNX graph beside it exported from that very file → the ONNX engine.
- ``NAME.keras`` alone, or with a stale graph (retrained, not re-exported) → the Keras engine,
  with a note on how to get the fast one (``clarityx export --format onnx``).
- ``NAME.tflite`` → the LiteRT runner (predictions and the gate; no Grad-CAM).

``$CLARITYX_ENGINE`` (``auto`` | ``onnx`` | ``keras``) overrides the choice.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from clarityx.screening.engine import CardedModel, OnnxClassifier, default_model_path, onnx_path
from clarityx.screening.errors import ModelUnreadable

ENGINE_ENV = "CLARITYX_ENGINE"
ENGINES = ("auto", "onnx", "keras")


def load_classifier(path: str | Path | None = None, engine: str | None = None) -> CardedModel:
    """The model at ``path`` (default: ``$CLARITYX_MODEL`` or the bundled one) on the best engine.

    Raises :class:`~clarityx.screening.errors.ModelNotInstalled` when there is no model (or card), and
    :class:`~clarityx.screening.errors.ModelUnreadable` when it is damaged or does not match its card.
    """
    path = Path(path) if path else default_model_path()
    engine = engine or os.environ.get(ENGINE_ENV) or "auto"
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose from {', '.join(ENGINES)}")
    if path.suffix == ".tflite":
        from clarityx.model.export import TFLiteClassifier
        return TFLiteClassifier(path)
    if path.suffix == ".onnx" or engine == "onnx":
        return OnnxClassifier(path)
    if engine == "auto" and path.is_file() and onnx_path(path).is_file():
        try:
            fast = OnnxClassifier(path, warm_up=False)  # warmed up only if it is the one used
            problem = None if fast.exported_from(path) else f"was exported from another version of {path.name}"
        except ModelUnreadable as exc:
            problem = f"cannot be read ({exc})"
        if problem is None:
            fast.warm_up()
            return fast
        warnings.warn(f"{onnx_path(path)} {problem}: using TensorFlow (slower to start); re-export with "
                      f"`clarityx export --model {path} --format onnx`", stacklevel=2)
    from clarityx.model.keras_engine import Classifier
    return Classifier(path)
