"""``clarityx export``: the classifier as ONNX (the app's and the CLI's engine) or TFLite (edge devices).

The exported graph takes prepared pixels (N, S, S, 3) float32 in [0, 255] and returns the
uncalibrated class probabilities and the 512-d embedding (so the gate's out-of-distribution test
runs too); the card's temperature still applies. The ONNX graph also returns a Grad-CAM map for
every class, computed in closed form from the feature map (:func:`gradcam_weights`), and records
the SHA-256 of the ``.keras`` file it came from. ``clarityx export --format onnx`` with no
``--output`` writes it beside the model, where :mod:`clarityx.loader` finds it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
from keras import ops

from clarityx.screening.card import card_path
from clarityx.screening.files import atomic_path
from clarityx.screening.engine import SOURCE_HASH_KEY, CardedModel, Prediction, default_model_path, sha256
from clarityx.screening.ood import ood_path


def gradcam_weights(fmap, emb, bn_scale, w1, w2):
    """Grad-CAM channel weights of every class: the mean over positions of d logit_c / d fmap
    (α_k^c of Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017).

    The head is z = fmap·s + t (BatchNorm at inference, s = ``bn_scale``), h = [max_ij z, mean_ij z],
    e = ReLU(h W1 + b1) (= ``emb``), logit = e W2 + b2. With g = W1 (mask(e > 0) ⊙ W2[:, c]) split into
    its max half a and mean half b, the gradient reaching the feature map sums to s·a over the
    positions that hold the maximum and to s·b spread evenly over all of them, whatever the ties; so
    its mean over the H·W positions is s·(a + b) / (H·W). Returns (N, K, C).
    """
    k, positions = fmap.shape[-1], fmap.shape[1] * fmap.shape[2]
    mask = ops.cast(emb > 0, fmap.dtype)
    g = ops.einsum("jd,ndc->njc", w1, mask[:, :, None] * w2[None])
    return bn_scale[None, :, None] * (g[:, :k] + g[:, k:]) / positions


class GradCam(keras.layers.Layer):
    """Every class's Grad-CAM map from the feature map and the embedding, normalised to [0, 1].
    Reads the head's own weights (no copies: the exported graph holds each tensor once)."""

    def __init__(self, head: keras.Model, **kwargs) -> None:
        super().__init__(**kwargs)
        self._bn, self._dense, self._out = (head.get_layer(n) for n in ("head_bn", "embedding", "probabilities"))

    def call(self, fmap, emb):
        scale = self._bn.gamma / ops.sqrt(self._bn.moving_variance + self._bn.epsilon)
        weights = gradcam_weights(fmap, emb, scale, self._dense.kernel, self._out.kernel)
        cam = ops.relu(ops.einsum("nhwk,nkc->nchw", fmap, weights))
        return cam / (ops.max(cam, axis=(2, 3), keepdims=True) + 1e-8)


def inference_graph(model_path: Path, cams: bool = False) -> keras.Model:
    """A Keras model with outputs probabilities, embedding (and, with ``cams``, Grad-CAM maps)."""
    model = keras.saving.load_model(model_path, compile=False)
    backbone, head = model.get_layer("backbone"), model.get_layer("head")
    two = keras.Model(head.input, [head.output, head.get_layer("embedding").output])
    image = keras.Input(model.input_shape[1:], name="pixels")
    fmap = backbone(image)
    probs, emb = two(fmap)
    outputs = {"probabilities": probs, "embedding": emb}
    if cams:
        outputs["cams"] = GradCam(head, name="gradcam")(fmap, emb)
    return keras.Model(image, outputs, name="clarityx_export")


def export_tflite(graph, out: Path, quantize: str | None) -> Path:
    import tensorflow as tf

    size = graph.input_shape[1]
    options: dict = {}
    if quantize == "float16":
        options = {"optimizations": [tf.lite.Optimize.DEFAULT],
                   "target_spec": {"supported_types": [tf.float16]}}
    elif quantize == "int8":  # dynamic-range: int8 weights, float activations
        options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    with atomic_path(out) as tmp:
        graph.export(str(tmp), format="litert", verbose=False,
                     input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32)], **options)
    return out


def export_onnx(graph, out: Path, quantize: str | None, source: Path | None = None) -> Path:
    if quantize:
        # Measured (benchmarks/RESULTS.md): onnxruntime's dynamic int8 was 10x slower than float32
        # on this CPU and moved probabilities by up to 0.19, so it is not offered.
        raise ValueError("ONNX export is float32 only; for a smaller model use --format tflite "
                         "--quantize float16 or int8")
    try:
        import tf2onnx  # noqa: F401  (keras' ONNX export for TensorFlow goes through it)
    except ImportError as exc:
        raise RuntimeError("ONNX export needs tf2onnx and onnx: pip install tf2onnx onnx") from exc
    import onnx
    import tensorflow as tf

    size = graph.input_shape[1]
    graph(np.zeros((1, size, size, 3), np.float32))  # Keras' ONNX export wants a model that has run
    with atomic_path(out) as tmp:  # an interrupted or failed export leaves the previous graph in place
        graph.export(str(tmp), format="onnx", verbose=False,
                     input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        if source is not None:
            proto = onnx.load(str(tmp))
            onnx.helper.set_model_props(proto, {SOURCE_HASH_KEY: sha256(source)})
            onnx.save(proto, str(tmp))
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
    if fmt == "onnx":
        export_onnx(inference_graph(model_path, cams=True), out, quantize, source=model_path)
    else:
        export_tflite(inference_graph(model_path), out, quantize)
    for companion in (card_path, ood_path):  # beside the model they are already shared (same stem)
        if companion(model_path).is_file() and companion(model_path) != companion(out):
            with atomic_path(companion(out)) as tmp:  # whole or not at all, as the graph
                shutil.copy(companion(model_path), tmp)
    if quantize and card_path(out).is_file():
        mark_quantized(card_path(out), quantize, model_path.name)
    return out


def mark_quantized(card_file: Path, quantize: str, source: str) -> None:
    """A quantised export keeps the float32 model's card, but says that its figures (metrics, temperature,
    DR threshold, OOD limit) were measured on the float32 model: ``clarityx evaluate --model`` re-measures."""
    from clarityx.screening.card import ModelCard

    card = ModelCard.load(card_file)
    note = (f"{quantize} export of {source}: every figure in this card (metrics, temperature, referable-DR "
            "threshold, out-of-distribution limit) was measured on the float32 model; this file's probabilities "
            "can differ from it by a few hundredths. Re-measure with `clarityx evaluate DATA --model` this file.")
    card.limitations = [note, *card.limitations]
    card.metrics = {**card.metrics, "measured_on": f"the float32 model {source}, not this {quantize} export"}
    card.save(card_file)


class TFLiteClassifier(CardedModel):
    """An exported ``.tflite`` model behind the engines' interface (predictions and the gate; no
    Grad-CAM). Exported with batch 1, so a batch runs photo by photo."""

    engine = "tflite"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter
        self._interp = Interpreter(model_path=str(self.path), num_threads=2)
        self._interp.allocate_tensors()

    def predict(self, pixels: np.ndarray, explain: bool = False) -> list[Prediction]:
        if explain:
            raise ValueError("a TFLite model cannot compute Grad-CAM; use the .keras or .onnx model")
        inp = self._interp.get_input_details()[0]
        outs = self._interp.get_output_details()
        probs, emb = [], []
        for row in self.check_pixels(pixels):
            self._interp.set_tensor(inp["index"], row[None])
            self._interp.invoke()
            by_width = {o["shape"][-1]: self._interp.get_tensor(o["index"]) for o in outs}
            emb.append(by_width[512][0])
            probs.append(next(v for k, v in by_width.items() if k != 512)[0])
        return [Prediction(p, e, None) for p, e in zip(self.calibrate(np.stack(probs)), emb)]
