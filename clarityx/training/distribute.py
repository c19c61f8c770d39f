"""Training on several devices with ``tf.distribute``: ``train.py --distribute mirrored|multi-worker``.

- ``mirrored``: :class:`tf.distribute.MirroredStrategy`, every GPU of one machine (the CPU when it has none).
- ``multi-worker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, several machines, each started with the
  same command and its own ``TF_CONFIG`` (``{"cluster": {"worker": ["host1:12345", ...]}, "task": {"type":
  "worker", "index": i}}``); worker 0 is the chief, the only one that writes checkpoints and the model.
- ``none`` (default): the one device TensorFlow picks, as before.

Scaling (the README states it): ``--batch-size`` is the batch of one replica (one GPU); the global batch is
``batch-size x replicas``, and phase 2's peak learning rate (``--lr``) grows in proportion to it, the linear rule
of Goyal et al. (2017), "Accurate, Large Minibatch SGD", with the warm-up the cosine schedule already has. The
phase-1 head is trained on cached features, small work that stays on one device with ``--head-lr`` as it is;
phase 2 (the whole network) runs on every replica.

The input pipeline (:func:`sharded_dataset`) is a ``tf.data`` pipeline of global batches: it orders the photos'
*indices* (a seeded permutation per epoch, the same on every worker), batches them, reads those photos' pixels,
augments, and is sharded over the workers by ``tf.data``'s DATA auto-shard policy (each worker keeps its 1/N of
every batch) and split over each worker's replicas by ``model.fit``; so each step sees the same photos as one
device with the global batch. (Not ``Dataset.shuffle``: the copy of the pipeline that ``fit`` distributes does
not keep its seeded order, and one device and two then train on different batches.) With the pixels in
memory, as ``train.py`` holds them, every worker reads all of a batch and keeps its share, a memory copy; a set
too large for memory would be sharded by file (TFRecord shards, ``AutoShardPolicy.FILE``).
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

DISTRIBUTE = ("none", "mirrored", "multi-worker")


def make_strategy(kind: str | None, devices: list[str] | None = None):
    """The ``tf.distribute`` strategy for ``--distribute KIND`` (``devices``: mirrored only, default all GPUs)."""
    import tensorflow as tf

    if kind in (None, "none"):
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if kind == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            warnings.warn("--distribute multi-worker without TF_CONFIG: this machine trains alone", stacklevel=2)
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown --distribute {kind!r}: choose from {', '.join(DISTRIBUTE)}")


@dataclass(frozen=True)
class Scaling:
    replicas: int
    per_replica_batch: int
    global_batch: int
    lr: float


def scale(per_replica_batch: int, lr: float, replicas: int) -> Scaling:
    """Global batch = per-replica batch x replicas; learning rate x replicas (the linear scaling rule)."""
    if per_replica_batch < 1 or replicas < 1:
        raise ValueError("the batch size and the number of replicas must be at least 1")
    return Scaling(replicas, per_replica_batch, per_replica_batch * replicas, lr * replicas)


def steps_per_epoch(n: int, global_batch: int) -> int:
    return max(1, math.ceil(n / global_batch))


def task() -> tuple[str, int]:
    """This process's ``(type, index)`` in ``TF_CONFIG`` (``("worker", 0)`` without one)."""
    spec = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    return spec.get("type", "worker"), int(spec.get("index", 0))


def is_chief() -> bool:
    """Whether this process writes checkpoints and the model (multi-worker: the chief, or worker 0)."""
    kind, index = task()
    return kind == "chief" or (kind == "worker" and index == 0)


def worker_path(path: str | os.PathLike, scratch: str | os.PathLike) -> str:
    """Where this worker writes ``path``: the chief the real place, the others a scratch copy (every worker
    must save for a multi-worker checkpoint to complete; only the chief's is kept)."""
    if is_chief():
        return os.fspath(path)
    kind, index = task()
    return os.path.join(os.fspath(scratch), f"{kind}{index}", os.path.basename(os.fspath(path)))


def sharded_dataset(n: int, load: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], global_batch: int,
                    seed: int, *, shuffle: bool = True, repeat: bool = True, augment: Callable | None = None,
                    class_weight: dict[int, float] | None = None, image_shape: tuple[int, int, int] | None = None):
    """The training input of ``n`` photos, a ``tf.data`` pipeline in global batches that ``model.fit`` under a
    strategy splits over the replicas and shards over the workers (see the module's docstring).

    ``load(indices)`` returns ``(pixels uint8 (k, S, S, 3), labels int32 (k,))`` for those photos: an array
    lookup (:func:`from_arrays`) or reading them from disk. ``augment`` maps ``(images, labels)`` batches;
    ``class_weight`` adds each photo's weight (``fit``'s own ``class_weight`` is not needed). With ``repeat`` the
    photos stream on across epochs: pass ``steps_per_epoch(n, global_batch)`` to ``fit``."""
    import tensorflow as tf

    table = None
    if class_weight:
        table = tf.constant([class_weight.get(i, 1.0) for i in range(max(class_weight) + 1)], tf.float32)

    def read(indices):
        pixels, labels = tf.numpy_function(load, [indices], [tf.uint8, tf.int32], stateful=False)
        pixels.set_shape((None, *image_shape) if image_shape else None)
        labels.set_shape((None,))
        return pixels, labels

    def order(epoch):  # the photos' order in an epoch: the same in every worker and every copy of the pipeline
        rng = np.random.default_rng([seed, int(epoch)])
        return (rng.permutation(n) if shuffle else np.arange(n)).astype(np.int64)

    # (not Dataset.shuffle: a distributed copy of the pipeline does not keep its order, and the replicas'
    # shares of a batch must come from one order)
    epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    ds = epochs.flat_map(lambda e: tf.data.Dataset.from_tensor_slices(
        tf.ensure_shape(tf.numpy_function(order, [e], tf.int64, stateful=False), (n,))))
    ds = ds.batch(global_batch, drop_remainder=repeat)
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(augment if augment else (lambda x, y: (tf.cast(x, tf.float32), y)), num_parallel_calls=tf.data.AUTOTUNE)
    if table is not None:
        ds = ds.map(lambda x, y: (x, y, tf.gather(table, y)))
    options = tf.data.Options()
    # No files to shard by: each worker keeps its 1/N of every global batch (the same on every worker, seeded).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def from_arrays(pixels: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``load`` for :func:`sharded_dataset` over photos already in memory (``train.py``'s ``x["train"]``)."""
    labels = np.asarray(labels, np.int32)

    def load(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.ascontiguousarray(pixels[indices], np.uint8), labels[indices]

    return load
