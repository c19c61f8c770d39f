"""The classifier (seed architecture) and its model card.

Classifier = backbone → head, two named sub-models so that inference can run
them separately (Grad-CAM needs the backbone's feature map):
backbone (EfficientNet, last conv block) → BatchNorm → [GlobalMaxPool, GlobalAveragePool]
→ Dense 512 ReLU ("embedding") → Dropout 0.4 → Dense softmax ("probabilities").
"""
from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from clarityx.model.backbones import build_backbone
from clarityx.screening.card import ModelCard, card_path, markdown_path


EMBEDDING_WIDTH = 512  # the embedding the gate's out-of-distribution test reads


def build_head(feature_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    fmap = keras.Input(feature_shape, name="feature_map")
    x = layers.BatchNormalization(name="head_bn")(fmap)
    pooled = layers.Concatenate(name="pooled")([
        layers.GlobalMaxPooling2D(name="max_pool")(x),
        layers.GlobalAveragePooling2D(name="avg_pool")(x),
    ])
    emb = layers.Dense(EMBEDDING_WIDTH, activation="relu", name="embedding")(pooled)
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


def save_model(model: keras.Model, card: ModelCard, path: str | Path) -> None:
    """Inference-only ``.keras`` (no optimizer state) plus card JSON and Markdown beside it."""
    from clarityx.screening.files import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keras saves the optimizer state of a compiled model and of compiled sub-models (the head,
    # after phase 1): save a fresh copy with every optimizer stripped.
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    for sub in [clean, *(layer for layer in clean._flatten_layers(include_self=False)
                         if isinstance(layer, keras.Model))]:
        sub.optimizer = None
        sub.compiled = False
    with atomic_path(path) as tmp:  # a full disk leaves any earlier model in place
        clean.save(tmp)
    save_card(card, path)


def save_card(card: ModelCard, model_path: str | Path) -> None:
    """The card beside a model: JSON and its Markdown rendering."""
    from clarityx.screening.card_markdown import render
    from clarityx.screening.files import write_text

    card.save(card_path(model_path))
    write_text(markdown_path(model_path), render(card))
