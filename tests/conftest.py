"""Shared fixtures: synthetic fundus photos and a tiny trained model (built here, offline)."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np
import pytest

CLASSES = ["normal", "cataract", "diabetic_retinopathy", "glaucoma"]
TINY_SIZE = 64


def synthetic_fundus(size: int = 400, seed: int = 0, spot: tuple[float, float] | None = None,
                     colour: tuple[int, int, int] = (40, 200, 255)) -> np.ndarray:
    """An orange disc on black with vessel-like dark lines, an optic disc and optional bright spot."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.uint8)
    c = size // 2
    r = int(size * 0.45)
    base = (int(rng.integers(170, 230)), int(rng.integers(60, 110)), int(rng.integers(20, 50)))
    cv2.circle(img, (c, c), r, base, -1)
    for _ in range(12):  # vessels: each photo its own pattern
        a, b = rng.integers(c - r // 2, c + r // 2, size=2), rng.integers(c - r // 2, c + r // 2, size=2)
        cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), (110, 25, 15), max(2, size // 60))
    angle = rng.uniform(0, 2 * np.pi)  # optic disc somewhere on a ring
    disc = (int(c + r * 0.45 * np.cos(angle)), int(c + r * 0.45 * np.sin(angle)))
    cv2.circle(img, disc, size // 12, (250, 200, 120), -1)
    noise = rng.normal(0, 6, img.shape)
    mask = img.max(axis=2, keepdims=True) > 0
    img = np.clip(img + noise * mask, 0, 255).astype(np.uint8)
    if spot is not None:
        cv2.circle(img, (int(spot[0] * size), int(spot[1] * size)), size // 12, colour, -1)
    return img


# Class k = a spot of colour k somewhere on the retina. The seed head pools globally (max and
# average), so the class must be readable wherever the spot is: a colour is, a position is not
# (an earlier "spot in quadrant k" signal could only be memorised, and the test was flaky).
SPOT_COLOURS = [(40, 200, 255), (60, 255, 60), (255, 60, 255), (20, 40, 230)]


def planted_dataset(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class k = a spot of :data:`SPOT_COLOURS` [k] at a random place: the signal Grad-CAM must find."""
    from clarityx.screening.preprocess import prepare

    rng = np.random.default_rng(seed)
    x, y = [], []
    for i in range(n):
        k = i % 4
        radius, angle = rng.uniform(0, 0.28), rng.uniform(0, 2 * np.pi)
        spot = (0.5 + radius * np.cos(angle), 0.5 + radius * np.sin(angle))
        x.append(prepare(synthetic_fundus(160, seed=int(rng.integers(1e9)), spot=spot, colour=SPOT_COLOURS[k]), size))
        y.append(k)
    return np.stack(x), np.array(y)


def planted_training_set(n: int = 240, blank: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Planted photos with one-hot targets, plus photos without a spot whose target is uniform.

    Without the blank photos a model may learn one class as "none of the other colours", and
    Grad-CAM (positive evidence only) is then empty for that class.
    """
    from clarityx.screening.preprocess import prepare

    x, y = planted_dataset(n, TINY_SIZE, seed=seed)
    rng = np.random.default_rng(seed + 1)
    blanks = np.stack([prepare(synthetic_fundus(160, seed=int(rng.integers(1e9))), TINY_SIZE) for _ in range(blank)])
    targets = np.concatenate([np.eye(4)[y], np.full((blank, 4), 0.25)])
    return np.concatenate([x, blanks]), targets.astype("float32")


def build_tiny_model(size: int = TINY_SIZE, outputs: int = len(CLASSES)):
    import keras
    from keras import layers

    from clarityx.model.build import build_head

    inp = keras.Input((size, size, 3))
    x = layers.Rescaling(1 / 255.0)(inp)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    backbone = keras.Model(inp, x, name="backbone")
    head = build_head(tuple(backbone.output.shape[1:]), outputs)
    image = keras.Input((size, size, 3), name="image")
    return keras.Model(image, head(backbone(image)), name="tiny")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A small CNN with the seed head, trained to find planted spots; saved with card and OOD stats."""
    import keras

    from clarityx.model.build import ModelCard, save_model
    from clarityx.screening.ood import MahalanobisModel, ood_path
    from clarityx.training.steps import embeddings

    keras.utils.set_random_seed(0)
    x, targets = planted_training_set()
    model = build_tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="categorical_crossentropy")
    model.fit(x.astype("float32"), targets, epochs=40, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    card = ModelCard(name="tiny-test-model", classes=CLASSES, input_size=TINY_SIZE, backbone="tiny-cnn",
                     architecture="test CNN → seed head", initialisation="random", temperature=1.0)
    planted = targets.max(1) == 1.0  # the gate's statistics: photos of a class, not the blanks
    ood = MahalanobisModel.fit(embeddings(model, x[planted], 32), targets[planted].argmax(1))
    save_model(model, card, path)
    ood.save(ood_path(path))
    return path


@pytest.fixture(scope="session")
def classifier(tiny_model):
    from clarityx.model.keras_engine import Classifier

    return Classifier(tiny_model)


@pytest.fixture
def fundus_jpeg(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "fundus.jpg"
    Image.fromarray(synthetic_fundus(400, seed=3)).save(path, quality=92)
    return path


@pytest.fixture(scope="session")
def retina_png(tmp_path_factory) -> Path:
    """scikit-image's real fundus photograph (ships inside the package: offline)."""
    import skimage.data
    from PIL import Image

    path = tmp_path_factory.mktemp("retina") / "retina.png"
    Image.fromarray(skimage.data.retina()).save(path)
    return path
