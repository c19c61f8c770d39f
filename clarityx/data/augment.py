"""Augmentation for fundus photos, as TensorFlow ops on float batches in [0, 255].

Geometry (flips, rotation, zoom) and, above all, photometry (brightness,
contrast, per-channel colour gain, gamma, saturation, blur): each camera in the
training data has its own colour and exposure, and the model must not be able
to tell the class from the camera.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def geometric_layers(seed: int) -> keras.Sequential:
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
        keras.layers.RandomRotation(0.5, fill_mode="constant", seed=seed + 1),
        keras.layers.RandomZoom((-0.15, 0.1), fill_mode="constant", seed=seed + 2),
    ], name="geometry")


def _uniform(shape, lo: float, hi: float) -> tf.Tensor:
    return tf.random.uniform(shape, lo, hi)


def photometric(x: tf.Tensor, strength: float = 1.0) -> tf.Tensor:
    """Random gamma, colour gain, brightness, contrast, saturation and blur, per image.

    ``strength`` scales every range (1.0: gamma ×0.7-1.4, channel gain ±20%, brightness ±30%,
    contrast ±30%, saturation ±40%).
    """
    s = strength
    n = tf.shape(x)[0]
    x = x / 255.0
    gamma = tf.exp(_uniform((n, 1, 1, 1), -0.35 * s, 0.35 * s))
    x = tf.pow(tf.clip_by_value(x, 1e-6, 1.0), gamma)
    gain = _uniform((n, 1, 1, 3), 1 - 0.2 * s, 1 + 0.2 * s) * _uniform((n, 1, 1, 1), 1 - 0.3 * s, 1 + 0.3 * s)
    x = x * gain
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * _uniform((n, 1, 1, 1), 1 - 0.3 * s, 1 + 0.3 * s) + mean
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    x = grey + (x - grey) * _uniform((n, 1, 1, 1), 1 - 0.4 * s, 1 + 0.4 * s)
    x = _random_blur(x, n, s)
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def _random_blur(x: tf.Tensor, n: tf.Tensor, strength: float) -> tf.Tensor:
    """Mix ~20% of images with a lightly blurred copy. Kept mild and rare: haze is what a
    cataract looks like, so strong blur would turn normal photos into cataract ones."""
    k = tf.constant([1.0, 4.0, 6.0, 4.0, 1.0])
    k = tf.tensordot(k, k, axes=0)
    k = k / tf.reduce_sum(k)
    kernel = tf.tile(k[:, :, None, None], [1, 1, 3, 1])
    blurred = tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")
    weight = tf.maximum(_uniform((n, 1, 1, 1), -2.0, 0.5), 0.0) * strength
    return x * (1 - weight) + blurred * weight


def augmenter(seed: int, strength: float = 1.0):
    geometry = geometric_layers(seed)

    def apply(images: tf.Tensor, labels: tf.Tensor):
        x = tf.cast(images, tf.float32)
        x = geometry(x, training=True)
        return photometric(x, strength), labels

    return apply
