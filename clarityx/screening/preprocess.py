"""The one preprocessing function shared by training, the app and the CLI.

:func:`prepare` crops a fundus photo to its circular field of view (removing the
dark border, which varies between cameras) and resizes it to the model's input.
Keeping it in one place means the model sees the same pixels everywhere.

Optionally it also evens out what differs between cameras (``contrast``): Ben
Graham's local-average subtraction (his Kaggle DR winner: subtract a blurred copy,
leaving vessels and lesions on a neutral grey) or CLAHE on the lightness channel.
The model's card names the one it was trained with, and every caller passes it on.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from clarityx.screening.limits import DEFAULT_GATE

# A pixel belongs to the field of view when its brightest channel exceeds this (GateSettings.fov_threshold).
FOV_THRESHOLD = DEFAULT_GATE.fov_threshold
# A row or column belongs to it when this share of its pixels do.
FOV_LINE_SHARE = 0.02


@dataclass(frozen=True)
class Box:
    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


def fov_mask(rgb: np.ndarray, threshold: int = FOV_THRESHOLD) -> np.ndarray:
    """Boolean mask of pixels bright enough to lie inside the camera's field of view."""
    _check_rgb(rgb)
    return _brightest(rgb) > threshold


def _brightest(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's brightest channel (``rgb.max(axis=2)``, several times faster on a large photo)."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def _box(rgb: np.ndarray, threshold: int) -> Box:
    mask = fov_mask(rgb, threshold)
    rows = np.flatnonzero(np.count_nonzero(mask, axis=1) > FOV_LINE_SHARE * mask.shape[1])
    cols = np.flatnonzero(np.count_nonzero(mask, axis=0) > FOV_LINE_SHARE * mask.shape[0])
    if rows.size == 0 or cols.size == 0:
        return Box(0, 0, rgb.shape[0], rgb.shape[1])
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


class FieldOfView:
    """A photo's field of view, found once: what the gate's measures, its centre-circle test and
    :func:`prepare` all read, with one threshold (a model's ``GateSettings.fov_threshold``).

    ``box`` is found on construction; the centred square crop and its resamples to a given side are made
    when first asked for and kept, so the gate's two tests share one 256 px resample.
    Build one with :func:`field_of_view`; every function here that takes a photo also takes one.
    """

    def __init__(self, rgb: np.ndarray, threshold: int = FOV_THRESHOLD) -> None:
        _check_rgb(rgb)
        self.rgb = rgb
        self.threshold = int(threshold)
        self.box = _box(rgb, self.threshold)
        self._square: np.ndarray | None = None
        self._resized: dict[int, np.ndarray] = {}

    @property
    def crop(self) -> np.ndarray:
        """The photo inside :attr:`box` (a view, not a copy)."""
        b = self.box
        return self.rgb[b.top:b.bottom, b.left:b.right]

    def square(self) -> np.ndarray:
        """The crop padded with black to a centred square (do not modify: it is kept)."""
        if self._square is None:
            crop = self.crop
            side = max(crop.shape[:2])
            out = np.zeros((side, side, 3), dtype=crop.dtype)
            top = (side - crop.shape[0]) // 2
            left = (side - crop.shape[1]) // 2
            out[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
            self._square = out
        return self._square

    def resized(self, size: int) -> np.ndarray:
        """:meth:`square` resampled to ``size`` × ``size`` (:func:`resize_square`; kept, do not modify)."""
        if size not in self._resized:
            self._resized[size] = resize_square(self.square(), size)
        return self._resized[size]


def field_of_view(rgb: np.ndarray | FieldOfView, threshold: int = FOV_THRESHOLD) -> FieldOfView:
    """The photo's :class:`FieldOfView` at ``threshold``: ``rgb`` itself when it already is one found with
    that threshold (one look per photo), else found now (on the same photo's pixels)."""
    if isinstance(rgb, FieldOfView):
        return rgb if rgb.threshold == int(threshold) else FieldOfView(rgb.rgb, threshold)
    return FieldOfView(rgb, threshold)


def fov_box(rgb: np.ndarray | FieldOfView, threshold: int = FOV_THRESHOLD) -> Box:
    """Bounding box of the field of view; the whole image when none is found."""
    return field_of_view(rgb, threshold).box


def crop_to_fov(rgb: np.ndarray | FieldOfView, threshold: int = FOV_THRESHOLD) -> np.ndarray:
    """Crop to the field of view and pad with black to a centred square."""
    return field_of_view(rgb, threshold).square().copy()


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` × ``size`` with one anti-aliasing filter.

    Shrinking by a factor ``k`` first low-passes with a Gaussian of σ = (k − 1) / 2 (the rule of
    scikit-image's ``resize(anti_aliasing=True)``), then averages pixel areas, so detail finer than the
    output can hold averages out instead of folding into false texture; enlarging is cubic.

    References
    ----------
    S. van der Walt et al., "scikit-image: image processing in Python", PeerJ 2:e453, 2014
    (``skimage.transform.resize``).
    """
    _check_rgb(rgb)
    factor = max(rgb.shape[:2]) / size
    if factor <= 1:
        return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_CUBIC)
    sigma = (factor - 1) / 2
    if sigma > 0.05:
        rgb = cv2.GaussianBlur(rgb, (0, 0), sigma)
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


CONTRASTS = ("none", "ben_graham", "clahe")


def local_average_subtraction(rgb: np.ndarray, sigma_fraction: float = 1 / 30,
                              threshold: int = FOV_THRESHOLD) -> np.ndarray:
    """Ben Graham's normalisation: ``4·(image − Gaussian blur) + 128`` inside the field of view,
    black outside. Removes each camera's colour cast and illumination fall-off.

    References
    ----------
    B. Graham, "Kaggle Diabetic Retinopathy Detection competition report", University of Warwick, 2015.
    """
    _check_rgb(rgb)
    img = rgb.astype(np.float32)
    blurred = cv2.GaussianBlur(img, (0, 0), max(1.0, sigma_fraction * rgb.shape[0]))
    out = np.clip(4 * (img - blurred) + 128, 0, 255).astype(np.uint8)
    out[~fov_mask(rgb, threshold)] = 0
    return out


def clahe(rgb: np.ndarray, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the L channel (LAB), colour kept.

    References
    ----------
    K. Zuiderveld, "Contrast limited adaptive histogram equalization", Graphics Gems IV, 1994, 474-485.
    """
    _check_rgb(rgb)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def normalise_contrast(rgb: np.ndarray, contrast: str = "none", threshold: int = FOV_THRESHOLD) -> np.ndarray:
    """Apply the camera normalisation named by ``contrast`` (one of :data:`CONTRASTS`); ``threshold``: the
    field of view's, outside which ``"ben_graham"`` leaves black."""
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
    if contrast == "ben_graham":
        return local_average_subtraction(rgb, threshold=threshold)
    if contrast == "clahe":
        return clahe(rgb)
    _check_rgb(rgb)
    return rgb


def prepare(rgb: np.ndarray | FieldOfView, size: int, contrast: str = "none") -> np.ndarray:
    """Photo → model input: field-of-view crop, square pad, resample, then ``contrast``.

    One look for every source size: the field of view is resampled straight to ``size`` with one
    anti-aliasing filter (area averaging when shrinking, so a 3,000 px photo is not aliased; cubic when
    enlarging). A model whose ``size`` is no larger than its training photos' field of view (about
    400 px for ODIR-5K and EyePACS here) therefore sees the same effective resolution whatever the
    upload's size: ``tests/test_size_invariance.py`` checks the answers on the same photos at two sizes.

    The screening pipeline passes the photo's :class:`FieldOfView` (found once, with the model's
    ``fov_threshold``, and read by the gate too); a bare photo is looked at here with :data:`FOV_THRESHOLD`.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 photo, or its :class:`FieldOfView`.
    size : side of the square output, at least 32.
    contrast : ``"none"``, ``"ben_graham"`` (:func:`local_average_subtraction`) or ``"clahe"``.

    Returns
    -------
    (size, size, 3) uint8 RGB in 0..255 (the model scales pixels itself).
    """
    if size < 32:
        raise ValueError(f"size must be at least 32, got {size}")
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
    view = rgb if isinstance(rgb, FieldOfView) else FieldOfView(rgb)
    return normalise_contrast(resize_square(view.square(), size), contrast, view.threshold)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
