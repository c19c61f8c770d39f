"""Pick the engine for a model file: ONNX Runtime when it can, TensorFlow only when it must.

- ``NAME.onnx`` → the ONNX engine (no TensorFlow is imported).
- ``NAME.keras`` with an ONNX graph beside it exported from that very file → the ONNX engine.
- ``NAME.keras`` alone, or with a stale graph (retrained, not re-exported) → the Keras engine,
  with a note on how to get the fast one (``clarityx export --format onnx``).
- ``NAME.tflite`` → the LiteRT runner (predictions and the gate; no Grad-CAM).

``$CLARITYX_ENGINE`` (``auto`` | ``onnx`` | ``keras``) overrides the choice.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from clarityx.screening.engine import CardedModel, OnnxClassifier, default_model_path, onnx_path
from clarityx.screening.errors import EngineNotInstalled, ModelUnreadable
from clarityx.screening.settings import ENGINE_ENV, ENGINES  # noqa: F401  (re-exported)
from clarityx.screening.settings import engine as engine_setting


def load_classifier(path: str | Path | None = None, engine: str | None = None, threads: int = 0) -> CardedModel:
    """The model at ``path`` (default: ``$CLARITYX_MODEL`` or the bundled one) on the best engine.

    ``threads``: ONNX Runtime's threads per run (0: one per core; a Ray actor sharing a node uses 1).

    Raises :class:`~clarityx.screening.errors.ModelNotInstalled` when there is no model (or card), and
    :class:`~clarityx.screening.errors.ModelUnreadable` when it is damaged or does not match its card.
    """
    path = Path(path) if path else default_model_path()
    engine = engine or engine_setting()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose from {', '.join(ENGINES)}")
    if path.suffix == ".tflite":
        from clarityx.model.export import TFLiteClassifier
        return TFLiteClassifier(path)
    if path.suffix == ".onnx" or engine == "onnx":
        return OnnxClassifier(path, threads=threads)
    if engine == "auto" and path.is_file() and onnx_path(path).is_file():
        try:
            fast = OnnxClassifier(path, threads=threads, warm_up=False)  # warmed up only if it is the one used
            problem = None if fast.exported_from(path) else f"was exported from another version of {path.name}"
        except ModelUnreadable as exc:
            problem = f"cannot be read ({exc})"
        if problem is None:
            fast.warm_up()
            return fast
        warnings.warn(f"{onnx_path(path)} {problem}: using TensorFlow (slower to start); re-export with "
                      f"`clarityx export --model {path} --format onnx`", stacklevel=2)
    try:
        from clarityx.model.keras_engine import Classifier
        return Classifier(path)
    except ModuleNotFoundError as exc:  # a run-time install: ONNX Runtime only, no TensorFlow or Keras
        raise EngineNotInstalled(keras_engine_missing(path, exc)) from exc


def keras_engine_missing(path: Path, exc: ModuleNotFoundError) -> str:
    """Why a ``.keras`` model cannot run here, and the two ways out."""
    graph = onnx_path(path)
    why = "has no ONNX graph beside it" if not graph.is_file() else f"has a graph ({graph.name}) it cannot use"
    return (f"{path.name} {why}, and running a .keras model needs TensorFlow and Keras, which this install "
            f"lacks ({exc.name or exc} is not installed). Either export its graph where the training tools are "
            f"installed — `clarityx export --model {path} --format onnx` writes {graph.name} beside it — or "
            f'install the training extra here: pip install "clarityx[train]" (from a checkout: '
            f'pip install ".[train]").')
