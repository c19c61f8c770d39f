"""Augmented views of a photo and frozen-backbone features cached per view.

The backbone is frozen for the bundled recipe, so its output for a given view of a photo never changes:
it is computed once per view (:func:`cache_features`) and the head is then fitted in seconds on the
cache. To make the head robust to cameras and upload sizes, each training photo is seen in several
random views (:func:`random_view`), made on the *source* photo before :func:`prepare`, as a person's
camera would make them: resolution (down-and-up scaling), encoding (JPEG at random qualities or
lossless), exposure, contrast, gamma, colour temperature, saturation, blur and sharpening, then
rotation, flips and field-of-view jitter.

The cache keeps, per view, the pooled maps the head and the candidates compared in the README read
(:func:`clarityx.model.backbones.model_tap_layers`): max and mean of the last map, its generalised mean
(GeM, p = 3; Radenović, Tolias & Chum, "Fine-tuning CNN image retrieval with no human annotation",
TPAMI 2018), and max and mean of the maps at the ends of stages 5 and 6 (112 and 192 channels in Lite0).
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from clarityx.model.backbones import model_tap_layers
from clarityx.screening.files import atomic_path
from clarityx.screening.imageio import load_image
from clarityx.screening.preprocess import crop_to_fov, normalise_contrast, resize_square

# Bump when random_view or the pooled layout changes: cache folders are keyed on it.
VIEWS_VERSION = 1


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else rgb


def random_view(rgb: np.ndarray, size: int, contrast: str, rng: np.random.Generator,
                strength: float = 1.0) -> np.ndarray:
    """One random view of a source photo, prepared as :func:`prepare` does (same crop, resampling
    and ``contrast``), for training only.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 source photo.
    size, contrast : as for :func:`clarityx.screening.preprocess.prepare`.
    rng : the random generator (a view is reproducible from its seed).
    strength : scales every photometric range (0: geometry and resolution only).

    Returns
    -------
    (size, size, 3) uint8.
    """
    s = strength
    x = crop_to_fov(rgb)
    side = x.shape[0]
    # Resolution: a smaller source (soft once enlarged), sometimes far smaller.
    if rng.random() < 0.5:
        small = int(max(160, side * rng.uniform(0.45, 0.95)))
        x = cv2.resize(x, (small, small), interpolation=cv2.INTER_AREA)
    # Encoding: JPEG at a random quality, or left lossless.
    if rng.random() < 0.6:
        x = _jpeg(x, int(rng.integers(50, 96)))
    f = x.astype(np.float32) / 255.0
    # Exposure, gamma, colour temperature, contrast, saturation.
    f = np.clip(f, 1e-6, 1.0) ** np.exp(rng.uniform(-0.3, 0.3) * s)
    t = rng.uniform(-0.12, 0.12) * s
    f = f * np.array([1 + t, 1.0, 1 - t], np.float32) * rng.uniform(1 - 0.25 * s, 1 + 0.25 * s)
    mean = f.mean()
    f = (f - mean) * rng.uniform(1 - 0.25 * s, 1 + 0.25 * s) + mean
    grey = f.mean(axis=2, keepdims=True)
    f = grey + (f - grey) * rng.uniform(1 - 0.35 * s, 1 + 0.35 * s)
    x = (np.clip(f, 0, 1) * 255).astype(np.uint8)
    x = resize_square(x, size)
    # Blur or sharpening (unsharp mask) at the model's scale: the look of other optics.
    r = rng.random()
    if r < 0.2 * s:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.2))
    elif r < 0.45 * s:
        soft = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.8, 2.0))
        amount = rng.uniform(0.3, 1.0)
        x = np.clip(x.astype(np.float32) + amount * (x.astype(np.float32) - soft), 0, 255).astype(np.uint8)
    # Geometry: any rotation, flips, field-of-view jitter (scale and shift).
    if rng.random() < 0.5:
        x = x[:, ::-1]
    if rng.random() < 0.5:
        x = x[::-1]
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(0, 360), rng.uniform(0.92, 1.08))
    m[:, 2] += rng.uniform(-0.04, 0.04, 2) * size
    x = cv2.warpAffine(np.ascontiguousarray(x), m, (size, size), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return normalise_contrast(x, contrast)


def pooled_extractor(backbone: keras.Model) -> keras.Model:
    """Backbone → ``{"last_max", "last_mean", "last_gem", "s5_max", ...}`` pooled vectors."""
    outputs = {}
    names = {layer.name for layer in backbone.layers}
    for tag, layer in model_tap_layers(backbone).items():
        if layer not in names:
            raise ValueError(f"the backbone has no {layer!r} layer")
        fmap = backbone.get_layer(layer).output
        outputs[f"{tag}_max"] = keras.ops.max(fmap, axis=(1, 2))
        outputs[f"{tag}_mean"] = keras.ops.mean(fmap, axis=(1, 2))
        if tag == "last":
            outputs["last_gem"] = keras.ops.mean(keras.ops.maximum(fmap, 1e-6) ** 3, axis=(1, 2)) ** (1 / 3)
    return keras.Model(backbone.input, outputs, name="pooled")


def weights_digest(backbone: keras.Model) -> str:
    """SHA-1 of the tapped layers' weights: two backbones with the same weights share a cache."""
    h = hashlib.sha1()
    for w in backbone.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def cache_key(paths: list[str], size: int, contrast: str, view: int, seed: int, weights: str = "") -> str:
    """A cache name that changes with the photos (their paths and contents), the backbone's weights, the
    settings and the library versions."""
    from PIL import __version__ as pillow

    from clarityx.training.steps import PREPROCESS_VERSION, content_stamp

    h = hashlib.sha1(f"v{VIEWS_VERSION}|p{PREPROCESS_VERSION}|{weights}|{size}|{contrast}|{view}|{seed}|"
                     f"{cv2.__version__}|"
                     f"{pillow}|{np.__version__}".encode())
    for p in paths:
        h.update(f"\n{p}|{content_stamp(p)}".encode())
    return h.hexdigest()[:16]


def cache_features(paths: list[str], backbone: keras.Model, size: int, contrast: str, view: int,
                   cache_dir: str | Path, seed: int = 0, batch_size: int = 32, chunk: int = 512,
                   threads: int = 2, progress=print) -> dict[str, np.ndarray]:
    """Pooled features of every photo in one view (0: the clean :func:`prepare` view; k > 0: the k-th
    random view, seeded by ``seed``, ``k`` and the photo's index). Chunks are saved as they finish,
    each written whole, so an interrupted run continues where it stopped."""
    from clarityx.screening.preprocess import prepare

    folder = Path(cache_dir) / f"views-{cache_key(paths, size, contrast, view, seed, weights_digest(backbone))}"
    final = folder / "features.npz"
    if final.is_file():
        with np.load(final) as z:
            return {k: z[k] for k in z.files}
    folder.mkdir(parents=True, exist_ok=True)
    extractor = pooled_extractor(backbone)
    run = tf.function(lambda x: extractor(x, training=False), reduce_retracing=True)

    def one(i: int) -> np.ndarray:
        rgb = load_image(paths[i])
        if view == 0:
            return prepare(rgb, size, contrast)
        return random_view(rgb, size, contrast, np.random.default_rng([seed, view, i]))

    parts = []
    with ThreadPoolExecutor(threads) as pool:
        for c, start in enumerate(range(0, len(paths), chunk)):
            part = folder / f"chunk-{c:05d}.npz"
            expected = min(start + chunk, len(paths)) - start
            if part.is_file():  # a chunk from a run with another chunk size is recomputed
                with np.load(part) as z:
                    if len(z[z.files[0]]) != expected:
                        part.unlink()
            if not part.is_file():
                pixels = np.stack(list(pool.map(one, range(start, min(start + chunk, len(paths))))))
                out: dict[str, list] = {}
                for b in range(0, len(pixels), batch_size):
                    for k, v in run(tf.constant(pixels[b:b + batch_size], tf.float32)).items():
                        out.setdefault(k, []).append(v.numpy().astype(np.float16))
                with atomic_path(part) as tmp:
                    with open(tmp, "wb") as f:
                        np.savez(f, **{k: np.concatenate(v) for k, v in out.items()})
                progress(f"view {view}: {min(start + chunk, len(paths))}/{len(paths)} photos")
            with np.load(part) as z:
                parts.append({k: z[k] for k in z.files})
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **merged)
    (folder / "meta.json").write_text(json.dumps({"size": size, "contrast": contrast, "view": view, "seed": seed,
                                                  "photos": len(paths)}))
    for part in folder.glob("chunk-*.npz"):
        part.unlink()
    return merged


def cache_measures(paths: list[str], cache_dir: str | Path, threads: int = 2,
                   progress=print) -> dict[str, np.ndarray]:
    """The gate's measures (:func:`clarityx.screening.gate.measure`: brightness, sharpness, colour, contrast, ...)
    of every photo as taken (no contrast normalisation: haze is a finding), cached like the features."""
    from clarityx.screening.gate import measure

    h = hashlib.sha1(f"measures|v2|{cv2.__version__}|{np.__version__}".encode())
    from clarityx.training.steps import content_stamp
    for p in paths:
        h.update(f"\n{p}|{content_stamp(p)}".encode())
    final = Path(cache_dir) / f"measures-{h.hexdigest()[:16]}.npz"
    if final.is_file():
        with np.load(final) as z:
            return {k: z[k] for k in z.files}

    def one(p: str) -> dict[str, float]:
        return measure(load_image(p))

    rows = []
    with ThreadPoolExecutor(threads) as pool:
        for i, r in enumerate(pool.map(one, paths)):
            rows.append(r)
            if (i + 1) % 1000 == 0:
                progress(f"measures: {i + 1}/{len(paths)} photos")
    out = {k: np.array([r[k] for r in rows], np.float32) for k in rows[0]}
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **out)
    return out
