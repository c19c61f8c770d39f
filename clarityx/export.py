"""``clarityx export``: the classifier as TFLite (LiteRT) or ONNX, for edge devices.

The exported graph takes prepared pixels (N, S, S, 3) float32 in [0, 255] and returns two
outputs: the uncalibrated class probabilities and the 512-d embedding (so the gate's
out-of-distribution test also runs on the edge). The card's temperature still applies.
Grad-CAM stays with the Keras model: it needs gradients.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from clarityx.card import card_path
from clarityx.inference import CardedModel, Prediction, default_model_path
from clarityx.ood import ood_path


def inference_graph(model_path: Path):
    """A Keras model with outputs (probabilities, embedding)."""
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    backbone, head = model.get_layer("backbone"), model.get_layer("head")
    two = keras.Model(head.input, [head.output, head.get_layer("embedding").output])
    image = keras.Input(model.input_shape[1:], name="pixels")
    probs, emb = two(backbone(image))
    return keras.Model(image, {"probabilities": probs, "embedding": emb}, name="clarityx_export")


def export_tflite(graph, out: Path, quantize: str | None) -> Path:
    import tensorflow as tf

    size = graph.input_shape[1]
    options: dict = {}
    if quantize == "float16":
        options = {"optimizations": [tf.lite.Optimize.DEFAULT],
                   "target_spec": {"supported_types": [tf.float16]}}
    elif quantize == "int8":  # dynamic-range: int8 weights, float activations
        options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    graph.export(str(out), format="litert", verbose=False,
                 input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32)], **options)
    return out


def export_onnx(graph, out: Path, quantize: str | None) -> Path:
    if quantize:
        # Measured (benchmarks/RESULTS.md): onnxruntime's dynamic int8 was 10x slower than float32
        # on this CPU and moved probabilities by up to 0.19, so it is not offered.
        raise ValueError("ONNX export is float32 only; for a smaller model use --format tflite "
                         "--quantize float16 or int8")
    try:
        import tf2onnx  # noqa: F401  (keras' ONNX export for TensorFlow goes through it)
    except ImportError as exc:
        raise RuntimeError("ONNX export needs tf2onnx and onnx: pip install tf2onnx onnx") from exc
    import tensorflow as tf

    size = graph.input_shape[1]
    graph(np.zeros((1, size, size, 3), np.float32))  # Keras' ONNX export wants a model that has run
    graph.export(str(out), format="onnx", verbose=False,
                 input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    return out


def export(model: str | Path | None, fmt: str, quantize: str | None = None,
           output: str | Path | None = None) -> Path:
    """Export the model; returns the written file. The card is copied beside it."""
    model_path = Path(model) if model else default_model_path()
    if not model_path.is_file():
        raise RuntimeError(f"no model at {model_path}")
    suffix = {"tflite": ".tflite", "onnx": ".onnx"}[fmt]
    tag = f".{quantize}" if quantize else ""
    out = Path(output) if output else model_path.with_name(model_path.stem + tag + suffix)
    graph = inference_graph(model_path)
    (export_tflite if fmt == "tflite" else export_onnx)(graph, out, quantize)
    shutil.copy(card_path(model_path), card_path(out))
    if ood_path(model_path).is_file():
        shutil.copy(ood_path(model_path), ood_path(out))
    return out


class ExportedModel:
    """Run an exported model: ``predict(pixels) -> (probabilities, embedding)``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix == ".onnx":
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            self._input = self._session.get_inputs()[0].name
            self._names = [o.name for o in self._session.get_outputs()]
        else:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError:
                from tensorflow.lite import Interpreter
            self._interp = Interpreter(model_path=str(self.path), num_threads=2)
            self._interp.allocate_tensors()

    def _run_tflite(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inp = self._interp.get_input_details()[0]
        outs = self._interp.get_output_details()
        probs, emb = [], []
        for row in x:  # exported with batch 1
            self._interp.set_tensor(inp["index"], row[None].astype(np.float32))
            self._interp.invoke()
            by_shape = {o["shape"][-1]: self._interp.get_tensor(o["index"]) for o in outs}
            emb.append(by_shape[512][0])
            probs.append(next(v for k, v in by_shape.items() if k != 512)[0])
        return np.stack(probs), np.stack(emb)

    def predict(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = pixels.astype(np.float32)
        if self.path.suffix == ".onnx":
            result = dict(zip(self._names, self._session.run(None, {self._input: x})))
            probs = next(v for k, v in result.items() if "prob" in k)
            emb = next(v for k, v in result.items() if "emb" in k)
            return probs, emb
        return self._run_tflite(x)


class ExportedClassifier(CardedModel):
    """An exported model behind the same interface as :class:`clarityx.inference.Classifier`
    (predictions and the gate; no Grad-CAM, which needs gradients)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self._model = ExportedModel(self.path)

    def predict(self, pixels: np.ndarray) -> list[Prediction]:
        probs, emb = self._model.predict(pixels)
        return [Prediction(p, e, None) for p, e in zip(self.calibrate(probs), emb)]
