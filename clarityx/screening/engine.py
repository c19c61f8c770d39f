"""The screening engine: a trained model's ONNX graph run by ONNX Runtime, with no TensorFlow.

``clarityx export --format onnx`` writes, beside the ``.keras`` file, one graph that takes
prepared pixels and returns, from a single run, the uncalibrated class probabilities, the
512-d embedding (for the gate's out-of-distribution test) and a Grad-CAM map for every class.
Grad-CAM needs no gradient at run time: the head after the last convolutional block is
BatchNorm → [global max, global mean] → Dense ReLU → Dense, so the position-averaged gradient
of a class logit with respect to the feature map has a closed form that the graph computes
(see :func:`clarityx.model.export.gradcam_weights`); it equals TensorFlow's Grad-CAM, and a
test holds the two together on real photos.

The ONNX file records the SHA-256 of the ``.keras`` file it was made from, so a model retrained
without re-exporting is noticed (see :mod:`clarityx.loader`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clarityx.screening.calibration import apply_temperature
from clarityx.screening.card import ModelCard, card_path
from clarityx.screening.errors import CardInvalid, ModelNotInstalled, ModelUnreadable
from clarityx.screening.ood import MahalanobisModel, ood_path
from clarityx.screening.settings import MODEL_ENV, bundled_model, model_path, user_models_dir

DEFAULT_MODEL = bundled_model()  # the checkout's models/, else the packaged graph (see settings)
SOURCE_HASH_KEY = "clarityx_source_sha256"  # ONNX metadata: the .keras file the graph came from


def default_model_path() -> Path:
    """``$CLARITYX_MODEL`` if set, else the bundled model."""
    return model_path()


def missing_model_message(path: Path) -> str:
    return (f"No trained model is installed at {path}. ClarityX will not guess with an untrained "
            "network. Get the bundled model with a fresh clone of the repository (run ClarityX from it, or "
            "`pip install .` there: the package then carries it); or put a model in "
            f"{user_models_dir()} (NAME.onnx with NAME.card.json and NAME.ood.npz beside it: the app lists "
            "it, the command line takes --model or CLARITYX_MODEL); or train one with `python train.py --data "
            f"DATASET --output models/NAME.keras`; or point {MODEL_ENV} (or --model) at a .keras or .onnx "
            "file with its .card.json beside it.")


REINSTALL = ("Reinstall the model from a fresh clone of the repository (or re-export it with "
             "`clarityx export --format onnx`), or point CLARITYX_MODEL at another model.")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Prediction:
    probabilities: np.ndarray  # (C,) calibrated
    embedding: np.ndarray      # (512,)
    cams: np.ndarray | None    # (C, h, w) in [0, 1], or None when not asked for


class CardedModel:
    """What every model file comes with: its card (classes, input size, temperature) and the
    gate's statistics. Engines add ``predict(pixels, explain=False)``."""

    can_explain = False
    engine = "none"
    ood_off: str | None = None  # why the out-of-distribution check cannot run (its statistics are missing)

    def __init__(self, path: str | Path | None) -> None:
        path = Path(path) if path else default_model_path()
        if not path.is_file() or not card_path(path).is_file():
            raise ModelNotInstalled(missing_model_message(path))
        self.path = path
        try:
            self.card = ModelCard.load(card_path(path))
            self.classes = list(self.card.classes)
            self.size = int(self.card.input_size)
            self.ood = MahalanobisModel.load(ood_path(path)) if ood_path(path).is_file() else None
            # Said wherever the model answers (CLI stderr, each JSON row, the Model page): never silent.
            from clarityx.screening.ood import ood_check_off
            self.ood_off = ood_check_off(path, self.card.gate_settings.max_ood_distance) if self.ood is None else None
        except CardInvalid as exc:  # says which field is wrong and how
            raise ModelUnreadable(f"The card of {path.name} cannot be used: {exc} {REINSTALL}") from exc
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ModelUnreadable(f"The model card or gate statistics beside {path.name} are damaged "
                                  f"({type(exc).__name__}: {exc}). {REINSTALL}") from exc

    def check_matches_card(self, input_shape, n_outputs) -> None:
        """Refuse a model whose input size or number of classes differs from its card's."""
        if tuple(input_shape[1:3]) != (self.size, self.size) or n_outputs != len(self.classes):
            raise ModelUnreadable(
                f"{self.path.name} does not match its card: it takes {input_shape[1]}×{input_shape[2]} px "
                f"and gives {n_outputs} classes; the card says {self.size}×{self.size} px and "
                f"{len(self.classes)} classes ({', '.join(self.classes)}). {REINSTALL}")

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        """Apply the card's temperature (and prior correction) to raw model probabilities."""
        return apply_temperature(probs, self.card.temperature, self.card.log_prior_correction)

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """The photo as this model sees it (size and camera normalisation from its card)."""
        from clarityx.screening.preprocess import prepare
        return prepare(rgb, self.size, self.card.contrast)

    def ood_distance(self, embedding: np.ndarray) -> float | None:
        return None if self.ood is None else float(self.ood.distance(embedding)[0])

    def ranked(self, probabilities: np.ndarray) -> list[tuple[str, float]]:
        """(class, probability) pairs, most probable first."""
        order = np.argsort(probabilities)[::-1]
        return [(self.classes[i], float(probabilities[i])) for i in order]

    def check_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Prepared pixels as float32 (N, S, S, 3); raises ValueError for anything else."""
        if pixels.ndim != 4 or pixels.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected (N, {self.size}, {self.size}, 3) prepared pixels, got {pixels.shape}")
        return np.ascontiguousarray(pixels, dtype=np.float32)

    def predict(self, pixels: np.ndarray, explain: bool = False) -> list[Prediction]:
        raise NotImplementedError

    def explain(self, pixels: np.ndarray) -> Prediction:
        """One prepared image → prediction with a Grad-CAM map for every class."""
        return self.predict(pixels[None], explain=True)[0]


def onnx_path(model_path: str | Path) -> Path:
    """Where ``clarityx export --format onnx`` puts a model's ONNX graph: beside it."""
    return Path(model_path).with_suffix(".onnx")


class OnnxClassifier(CardedModel):
    """A model's ONNX graph on ONNX Runtime: probabilities, embedding and Grad-CAM in one run."""

    can_explain = True
    engine = "onnx"

    def __init__(self, path: str | Path | None = None, threads: int = 0, warm_up: bool = True) -> None:
        super().__init__(path)
        if self.path.suffix != ".onnx":
            self.path = onnx_path(self.path)
        if not self.path.is_file():
            raise ModelNotInstalled(missing_model_message(self.path))
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            outputs = {o.name: o.shape for o in self._session.get_outputs()}
            self._names = {key: next(n for n in outputs if key in n) for key in ("probabilities", "embedding", "cams")}
        except Exception as exc:  # onnxruntime's own error types: a damaged or foreign file
            raise ModelUnreadable(f"{self.path.name} is not a ClarityX ONNX graph or is damaged "
                                  f"({type(exc).__name__}: {str(exc)[:200]}). {REINSTALL}") from exc
        self._input = self._session.get_inputs()[0].name
        self.check_matches_card(self._session.get_inputs()[0].shape, outputs[self._names["probabilities"]][-1])
        self.source_sha256 = self._session.get_modelmeta().custom_metadata_map.get(SOURCE_HASH_KEY)
        if warm_up:
            self.warm_up()

    def warm_up(self) -> None:
        """ONNX Runtime's first run allocates and plans: do it now, not on a person's photo."""
        self.explain(np.zeros((self.size, self.size, 3), np.uint8))

    def exported_from(self, keras_path: Path) -> bool:
        """True when this graph was exported from that very ``.keras`` file."""
        return self.source_sha256 == sha256(keras_path)

    def predict(self, pixels: np.ndarray, explain: bool = False) -> list[Prediction]:
        """Batch of prepared images (see :func:`clarityx.screening.preprocess.prepare`) → predictions;
        with ``explain`` each carries a Grad-CAM map per class (from the same run)."""
        wanted = ["probabilities", "embedding"] + (["cams"] if explain else [])
        out = self._session.run([self._names[k] for k in wanted], {self._input: self.check_pixels(pixels)})
        probs = self.calibrate(out[0])
        cams = out[2] if explain else [None] * len(probs)
        return [Prediction(p, e, c) for p, e, c in zip(probs, out[1], cams)]
