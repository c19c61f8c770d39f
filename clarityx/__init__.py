"""ClarityX: a fundus-photo screening aid — screen a photo, see where the model looked.

    import clarityx
    model = clarityx.load_classifier()          # the bundled model, on ONNX Runtime when it can
    result = clarityx.analyse(model, "eye.jpg")  # decode → gate → prepare → classify → Grad-CAM
    result.ranked                                # [(class, calibrated probability), ...]

Layers (each imports only those below it; ``tests/test_layout.py`` holds them to it):
``screening`` (run time, no TensorFlow) ← ``data`` and ``model`` ← ``training``; the CLI, the
loader and the app sit on top. Names are imported on first use, so ``import clarityx`` is cheap.
"""

__version__ = "0.2.0"

_PUBLIC = {
    "load_classifier": "clarityx.loader",
    "analyse": "clarityx.screening.pipeline",
    "Result": "clarityx.screening.pipeline",
    "load_image": "clarityx.screening.imageio",
    "prepare": "clarityx.screening.preprocess",
    "overlay": "clarityx.screening.heatmap",
    "ClarityXError": "clarityx.screening.errors",
    "ImageRejected": "clarityx.screening.errors",
    "ModelNotInstalled": "clarityx.screening.errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'clarityx' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_PUBLIC[name]), name)
