"""Showing a Grad-CAM map: blended over the photo with OpenCV's JET colour map.

Grad-CAM: R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh and D. Batra, "Grad-CAM:
Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017
(arXiv:1610.02391). The map of class c is ReLU(Σ_k α_k^c A^k), the last convolutional feature maps
A^k weighted by the spatial mean of d y^c / d A^k; it is computed by the engine
(:func:`clarityx.model.export.gradcam_weights`, :mod:`clarityx.model.keras_engine`).
"""
from __future__ import annotations

import numpy as np


def overlay(rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a Grad-CAM map (any size, values in [0, 1]) over an RGB image with OpenCV's JET map.

    Only the field of view is coloured; the black border around a fundus photo stays black.
    """
    import cv2

    from clarityx.screening.preprocess import fov_mask

    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be between 0 and 1")
    h, w = rgb.shape[:2]
    heat = cv2.resize(np.clip(cam, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    blended = cv2.addWeighted(rgb, 1 - alpha, colour, alpha, 0)
    return np.where(fov_mask(rgb)[..., None], blended, rgb)


def heatmap_conditions(result, classes, threshold: float | None) -> list[str]:
    """The conditions whose heat maps are drawn for a graded photo (``clarityx predict --heatmap-dir`` on either
    engine): its top answer's, and the diabetic-retinopathy map too when referable DR is flagged under another
    top answer (a "normal" eye flagged: the flag's evidence). The flag is the result's own
    (:func:`clarityx.screening.grades.referable_flag` on its ``referable_score``: a grade layer's, where the
    model has one). Empty for a photo that was not graded."""
    from clarityx.screening.classes import DIABETIC_RETINOPATHY
    from clarityx.screening.grades import referable_flag

    if result.status != "ok" or not result.ranked:
        return []
    shown = [result.top]
    if referable_flag(dict(result.ranked), threshold, result.referable_score) \
            and DIABETIC_RETINOPATHY in classes and result.top != DIABETIC_RETINOPATHY:
        shown.append(DIABETIC_RETINOPATHY)
    return shown
