"""The classifier (seed architecture) and its model card.

Classifier = backbone → head, two named sub-models so that inference can run
them separately (Grad-CAM needs the backbone's feature map):
backbone (EfficientNet, last conv block) → BatchNorm → [GlobalMaxPool, GlobalAveragePool]
→ Dense 512 ReLU ("embedding") → Dropout 0.4 → Dense softmax ("probabilities").
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
from keras import layers

from clarityx.backbones import build_backbone

CARD_SUFFIX = ".card.json"


def build_head(feature_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    fmap = keras.Input(feature_shape, name="feature_map")
    x = layers.BatchNormalization(name="head_bn")(fmap)
    pooled = layers.Concatenate(name="pooled")([
        layers.GlobalMaxPooling2D(name="max_pool")(x),
        layers.GlobalAveragePooling2D(name="avg_pool")(x),
    ])
    emb = layers.Dense(512, activation="relu", name="embedding")(pooled)
    x = layers.Dropout(0.4, name="dropout")(emb)
    probs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(fmap, probs, name="head")


def build_classifier(backbone: str, num_classes: int, img_size: int,
                     weights: str | None = None) -> keras.Model:
    """Seed architecture on a named backbone. Input: RGB pixels in [0, 255]."""
    base = build_backbone(backbone, img_size, weights)
    head = build_head(tuple(base.output.shape[1:]), num_classes)
    inputs = keras.Input((img_size, img_size, 3), name="image")
    return keras.Model(inputs, head(base(inputs)), name=f"clarityx_{backbone}")


@dataclass
class ModelCard:
    """Everything a user (and the app) needs to know about a trained model."""

    name: str
    classes: list[str]
    input_size: int
    backbone: str
    architecture: str
    initialisation: str
    version: str = "0"
    temperature: float = 1.0
    intended_use: str = (
        "Screening aid for adults at home: ranks how much a retinal fundus photograph resembles "
        "each class. Not a diagnosis; it cannot rule disease out.")
    limitations: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    audit: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    comparison: list[dict] = field(default_factory=list)
    gate: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        data = json.loads(Path(path).read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def card_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + CARD_SUFFIX)


def markdown_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".card.md")


def save_model(model: keras.Model, card: ModelCard, path: str | Path) -> None:
    """Inference-only ``.keras`` (no optimizer state) plus card JSON and Markdown beside it."""
    from clarityx.card_markdown import render

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.optimizer is not None:  # Keras saves a compiled model's optimizer: save a clean copy
        clean = keras.Model.from_config(model.get_config())
        clean.set_weights(model.get_weights())
        model = clean
    model.save(path)
    card.save(card_path(path))
    markdown_path(path).write_text(render(card))
