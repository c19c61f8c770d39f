"""Decode any photo a person may have into an 8-bit RGB numpy array.

Handles JPEG/PNG/TIFF/BMP/WebP (whatever Pillow reads), EXIF orientation,
greyscale, palette, alpha, 16-bit and float images. A JPEG far larger than the gate and
the model need may be decoded at 1/2, 1/4 or 1/8 scale directly (``shrink_to``). Refuses, with a typed error,
files that are not images, corrupt or truncated files, oversized files and
decompression bombs, and images too small to grade.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from clarityx.screening.errors import CorruptImage, ImageTooLarge, ImageTooSmall, NotAnImage
from clarityx.screening.limits import DEFAULT_GATE

# The defaults (clarityx.screening.limits.GateSettings); a model's card may record its own.
MAX_FILE_BYTES = DEFAULT_GATE.max_file_bytes
MAX_PIXELS = DEFAULT_GATE.max_pixels
MIN_SIDE = DEFAULT_GATE.min_side
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
# The only decoders a file may reach (Pillow's JPEG one also opens phones' multi-picture JPEGs).
# A renamed file of any other format Pillow knows is refused rather than handed to a rarely used plugin.
FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
# The short side a screened JPEG may be decoded down to (``load_image(shrink_to=...)``): the gate looks at
# 256 px and the model at 384 px, so a field of view of about 1,000 px keeps more than twice what either
# reads; the anti-aliased resample in ``preprocess`` averages the rest away either way.
SCREEN_SIDE = 1000

Source = str | Path | bytes | BinaryIO


def _read_bytes(source: Source, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise NotAnImage(f"{path.name}: no such file.")
        if path.stat().st_size > max_bytes:
            raise ImageTooLarge(
                f"The file is {path.stat().st_size / 2**20:.0f} MB; the limit is "
                f"{max_bytes / 2**20:.0f} MB. Export a smaller JPEG or PNG.")
        data = path.read_bytes()
    else:
        data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"The file is over the {max_bytes / 2**20:.0f} MB limit. Export a smaller JPEG or PNG.")
    if not data:
        raise NotAnImage("The file is empty.")
    return data


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale pixels to 0..255 by their *type*, never by their values (as scikit-image's
    ``img_as_ubyte``): a dim 16-bit photo stays dim. Integers wider than 8 bits are 16-bit
    samples (Pillow reads 16-bit PNG and TIFF as 16- or 32-bit integers); floats are 0..1."""
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        scaled = np.nan_to_num(arr.astype(np.float64)) * 255.0
    else:
        scaled = arr.astype(np.float64) / 65535.0 * 255.0
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        grey = _to_uint8(np.asarray(im))
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent parts become black, like the dark border around a fundus photo.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(background, rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open (not yet decode) image bytes with the allowed decoders only, refusing images over
    ``max_pixels`` before any pixel is decoded. Raises NotAnImage or ImageTooLarge."""
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise NotAnImage("This file is not an image ClarityX can read (use JPEG, PNG, TIFF, BMP or WebP).") from exc
    if im.width * im.height > max_pixels:
        raise ImageTooLarge(f"The image is {im.width}×{im.height} pixels; the limit is "
                            f"{max_pixels / 1e6:.0f} megapixels. Resize it and try again.")
    return im


def shrink(im: Image.Image, side: int) -> None:
    """Have a JPEG not yet loaded decode at the smallest of 1/2, 1/4 and 1/8 scale (libjpeg's DCT scaling)
    that keeps its short side at least ``side``; any other image, or one too small, is left as it is.
    The scale is chosen on the stored size; EXIF orientation (applied after decoding) keeps the short side."""
    if im.format in ("JPEG", "MPO") and min(im.size) >= 2 * side:
        im.draft(None, (side, side))  # Pillow picks the largest scale s with size // s >= (side, side)


def load_image(source: Source, *, max_bytes: int = MAX_FILE_BYTES,
               max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE,
               shrink_to: int | None = None) -> np.ndarray:
    """Decode ``source`` (path, bytes or binary file) to an ``(H, W, 3)`` uint8 RGB array.

    EXIF orientation is applied so the array is upright as the camera saw it.
    ``shrink_to``: a JPEG at least twice this on its short side is decoded at 1/2, 1/4 or 1/8 scale, its
    short side still at least ``shrink_to`` (and ``min_side``); None: always at full size. The size limits
    apply to the stored size either way.
    Raises a subclass of :class:`~clarityx.screening.errors.ImageRejected` for anything unusable.
    """
    data = _read_bytes(source, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = open_image(data, max_pixels)
            if shrink_to is not None:
                shrink(im, max(shrink_to, min_side))
            im.load()
            im = ImageOps.exif_transpose(im)
    except ImageTooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge("The image is too large to open safely. Resize it and try again.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"The image file is damaged or incomplete ({exc}). Try exporting it again.") from exc
    try:
        rgb = _to_rgb(im)
    except (OSError, ValueError) as exc:
        raise CorruptImage(f"The image's pixel format is not supported ({im.mode}).") from exc
    if min(rgb.shape[:2]) < min_side:
        raise ImageTooSmall(
            f"The image is {rgb.shape[1]}×{rgb.shape[0]} pixels; at least {min_side} pixels on the "
            "short side are needed to see the retina. Use the original photo, not a thumbnail.")
    return rgb


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def find_images(paths: list[str | Path]) -> list[Path]:
    """Expand files and directories (walked recursively, sorted) into a list of image paths.

    Files named explicitly are kept whatever their suffix, so a bad file gets a clear refusal.
    """
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.is_file() and is_image_path(q)))
        else:
            found.append(p)
    return found
