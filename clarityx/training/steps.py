"""Pieces of the training run that ``train.py`` strings together."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from clarityx.data.datasets import Sample
from clarityx.screening.imageio import load_image
from clarityx.screening.preprocess import prepare

# Bump when prepare() changes what it returns: the decoded-pixel cache is keyed on it.
PREPROCESS_VERSION = 3  # 3: anti-aliased resampling (a Gaussian before area averaging)


def set_seeds(seed: int) -> None:
    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)


PIXEL_CACHE_LIMIT = 8 * 2**30  # bytes of decoded-pixel cache kept in a folder; least recently used go first


def content_stamp(path: str | Path) -> str:
    """A file's size and content digest (BLAKE2b): a cache keyed on it follows a replaced photo, and
    survives the data being mounted again at the same path (new modification times, same photos). Reading
    7,622 photos (182 MB) to digest them takes about 2 s here."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            size = 0
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except OSError:
        return "missing"  # decoding will say what is wrong with it
    return f"{size}|{h.hexdigest()}"


def pixel_cache_key(samples: list[Sample], size: int, contrast: str) -> str:
    """What the cached pixels depend on: each file's path and content (a replaced photo is decoded
    again), ``prepare``'s version, and the OpenCV and Pillow releases that decode and resample it."""
    import cv2
    import PIL

    key = hashlib.sha256(f"{size}|{contrast}|v{PREPROCESS_VERSION}|opencv {cv2.__version__}|"
                         f"pillow {PIL.__version__}|numpy {np.__version__}\n".encode())
    for s in samples:
        key.update(f"{s.path}|{content_stamp(s.path)}\n".encode())
    return key.hexdigest()[:24]


def read_pixel_cache(cache: Path, n: int, size: int) -> np.ndarray | None:
    """The cached array, or None when it is absent, damaged (a truncated or foreign file) or of the
    wrong shape; a damaged file is removed."""
    try:
        pixels = np.load(cache, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError):
        cache.unlink(missing_ok=True)
        return None
    if pixels.shape != (n, size, size, 3) or pixels.dtype != np.uint8:
        cache.unlink(missing_ok=True)
        return None
    os.utime(cache)  # recently used: kept longest
    return pixels


def write_pixel_cache(cache: Path, pixels: np.ndarray, limit: int = PIXEL_CACHE_LIMIT) -> None:
    """Save atomically (a stopped run leaves no partial file), then trim the folder to ``limit``."""
    from clarityx.screening.files import atomic_path

    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, pixels, allow_pickle=False)
    prune_pixel_cache(cache.parent, limit, keep=cache)


def prune_pixel_cache(folder: Path, limit: int = PIXEL_CACHE_LIMIT, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used pixel caches in ``folder`` until they total at most ``limit``
    bytes (``keep``, the one just written, stays). Returns what was removed."""
    entries = []
    for path in Path(folder).glob("pixels-*.npy"):
        try:
            st = path.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, path in sorted(entries):  # oldest first
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed


def load_pixels(samples: list[Sample], size: int, cache_dir: Path | None = None,
                threads: int = 4, contrast: str = "none", cache_limit: int = PIXEL_CACHE_LIMIT) -> np.ndarray:
    """Decode and preprocess every image once: ``(N, size, size, 3)`` uint8, cached on disk (see
    :func:`pixel_cache_key`; written atomically; at most ``cache_limit`` bytes per folder)."""
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"pixels-{size}-{pixel_cache_key(samples, size, contrast)}.npy"
        cached = read_pixel_cache(cache, len(samples), size)
        if cached is not None:
            return cached

    def one(sample: Sample) -> np.ndarray:
        return prepare(load_image(sample.path), size, contrast)

    with ThreadPoolExecutor(threads) as pool:
        pixels = np.stack(list(tqdm(pool.map(one, samples), total=len(samples),
                                    desc=f"decode {size}px", unit="img")))
    if cache is not None:
        write_pixel_cache(cache, pixels, cache_limit)
    return pixels


def class_weights(labels: np.ndarray, num_classes: int, mode: str = "inverse") -> dict[int, float]:
    """Per-class loss weights, mean 1 over the samples: ``inverse`` (1/frequency), ``sqrt``
    (1/sqrt(frequency): milder, so that the commonest class, normal, is not drowned) or ``none``."""
    counts = np.maximum(np.bincount(labels, minlength=num_classes).astype(float), 1)
    power = {"inverse": 1.0, "sqrt": 0.5, "none": 0.0}[mode]
    weights = counts ** -power
    weights = weights * len(labels) / float((weights * counts).sum())
    return {i: float(w) for i, w in enumerate(weights)}


def backbone_features(backbone: keras.Model, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """Frozen-backbone feature maps for phase 1 (one forward pass, no augmentation)."""
    run = tf.function(lambda x: backbone(x, training=False), reduce_retracing=True)
    out = None  # filled in place: a list then a concatenation would need twice the memory (OOM at 512 px)
    for start in tqdm(range(0, len(pixels), batch_size), desc="features", unit="batch"):
        batch = run(tf.constant(pixels[start:start + batch_size], tf.float32)).numpy()
        if out is None:
            out = np.empty((len(pixels), *batch.shape[1:]), np.float32)
        out[start:start + len(batch)] = batch
    return out if out is not None else np.zeros((0, *backbone.output.shape[1:]), np.float32)


def predict_probs(model: keras.Model, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    run = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return np.concatenate([
        run(tf.constant(pixels[i:i + batch_size], tf.float32)).numpy()
        for i in range(0, len(pixels), batch_size)
    ])


def freeze_batchnorm(model: keras.Model) -> None:
    """Keep every BatchNorm in inference mode: short fine-tunes are otherwise dominated by
    lagging running statistics (Keras' transfer-learning guide does the same)."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def freeze_first_blocks(backbone: keras.Model, blocks: int) -> None:
    """Freeze the stem and the first ``blocks`` blocks (cheaper backward pass on a CPU)."""
    if blocks <= 0:
        return
    for layer in backbone.layers:
        name = layer.name
        if name.startswith("stem") or name in ("rescale", "rescaling", "normalization"):
            layer.trainable = False
        elif name.startswith("block"):
            digits = "".join(ch for ch in name[5:].split("_")[0] if ch.isdigit())
            if digits and int(digits) < blocks:
                layer.trainable = False


def train_dataset(pixels: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                  augment) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((pixels, labels))
    ds = ds.shuffle(len(pixels), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_dataset(pixels: np.ndarray, labels: np.ndarray, batch_size: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((pixels, labels)).batch(batch_size)
    return ds.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(tf.data.AUTOTUNE)


def embeddings(model: keras.Model, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """The 512-d embedding (penultimate layer) of every image, for the out-of-distribution gate."""
    backbone = model.get_layer("backbone")
    head = model.get_layer("head")
    emb_model = keras.Model(head.input, head.get_layer("embedding").output)
    run = tf.function(lambda x: emb_model(backbone(x, training=False), training=False),
                      reduce_retracing=True)
    return np.concatenate([
        run(tf.constant(pixels[i:i + batch_size], tf.float32)).numpy()
        for i in range(0, len(pixels), batch_size)
    ])
