"""Images that are not gradable fundus photos, made offline, for fitting and testing the gate.

- natural photographs that ship inside scikit-image;
- synthetic cases drawn here: solid colours, noise, gradients, text pages, app screenshots,
  and a photo of an eye from the front (iris and pupil, not the retina);
- degraded versions of real fundus photos: heavy blur, under- and over-exposure, half the
  field of view cut away.
"""
from __future__ import annotations

from typing import Callable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageDraw

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "camera", "rocket", "immunohistochemistry", "coins",
                  "page", "text", "horse", "moon", "grass", "gravel", "brick", "hubble_deep_field",
                  "colorwheel", "cell", "clock", "microaneurysms", "stereo_motorcycle", "logo")


def skimage_photos() -> Iterator[tuple[str, np.ndarray]]:
    import skimage.data

    for name in SKIMAGE_PHOTOS:
        try:
            img = getattr(skimage.data, name)()
        except Exception:  # some need an optional download (pooch): skip offline
            continue
        if isinstance(img, tuple):
            img = img[0]
        img = np.asarray(img)
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = img[..., :3]
        if img.dtype != np.uint8:
            img = (255 * (img - img.min()) / max(float(img.max() - img.min()), 1e-6)).astype(np.uint8)
        if min(img.shape[:2]) < 128:
            img = cv2.resize(img, None, fx=256 / min(img.shape[:2]), fy=256 / min(img.shape[:2]))
        yield f"skimage.{name}", img


def _text_page(rng: np.random.Generator, size: int) -> np.ndarray:
    img = Image.new("RGB", (size, int(size * 1.3)), tuple(int(v) for v in rng.integers(220, 256, 3)))
    draw = ImageDraw.Draw(img)
    for y in range(10, img.height - 20, 18):
        words = " ".join("".join(chr(int(c)) for c in rng.integers(97, 123, rng.integers(2, 9)))
                         for _ in range(8))
        draw.text((10, y), words, fill=tuple(int(v) for v in rng.integers(0, 80, 3)))
    return np.asarray(img)


def _screenshot(rng: np.random.Generator, size: int) -> np.ndarray:
    img = Image.new("RGB", (int(size * 1.6), size), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, img.width, 40], fill=tuple(int(v) for v in rng.integers(0, 200, 3)))
    for _ in range(12):
        x, y = int(rng.integers(0, img.width - 80)), int(rng.integers(50, img.height - 30))
        draw.rectangle([x, y, x + int(rng.integers(40, 200)), y + int(rng.integers(15, 60))],
                       fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw.text((x + 4, y + 2), "Button", fill=(0, 0, 0))
    return np.asarray(img)


def _front_of_eye(rng: np.random.Generator, size: int) -> np.ndarray:
    """A crude photo of an eye from the front: skin, white sclera, coloured iris, black pupil."""
    skin = rng.integers(150, 230, 3)
    img = np.full((size, int(size * 1.5), 3), skin * np.array([1, 0.8, 0.7]), np.uint8)
    c = (img.shape[1] // 2, size // 2)
    cv2.ellipse(img, c, (int(size * 0.6), int(size * 0.3)), 0, 0, 360, (235, 235, 230), -1)
    cv2.circle(img, c, int(size * 0.22), tuple(int(v) for v in rng.integers(40, 160, 3)), -1)
    cv2.circle(img, c, int(size * 0.09), (10, 10, 10), -1)
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def synthetic(count: int, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    makers: list[tuple[str, Callable[[np.random.Generator, int], np.ndarray]]] = [
        ("solid", lambda r, s: np.full((s, s, 3), r.integers(0, 256, 3), np.uint8)),
        ("noise", lambda r, s: r.integers(0, 256, (s, s, 3), dtype=np.uint8)),
        ("gradient", lambda r, s: np.dstack([np.linspace(r.integers(0, 128), r.integers(128, 256), s)[None]
                                             .repeat(s, 0).astype(np.uint8)] * 3)),
        ("text", _text_page),
        ("screenshot", _screenshot),
        ("front_of_eye", _front_of_eye),
    ]
    for i in range(count):
        name, make = makers[i % len(makers)]
        yield f"synthetic.{name}.{i}", make(rng, int(rng.integers(200, 500)))


def degrade(rgb: np.ndarray, kind: str) -> np.ndarray:
    """A fundus photo made ungradable: 'blur', 'dark', 'bright' or 'half'."""
    h, w = rgb.shape[:2]
    if kind == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), max(h, w) / 40)
    if kind == "dark":
        return (rgb.astype(np.float32) * 0.12).astype(np.uint8)
    if kind == "bright":
        return np.clip(rgb.astype(np.float32) * 0.25 + 215, 0, 255).astype(np.uint8)
    if kind == "half":
        return rgb[:, : w // 2].copy()
    raise ValueError(kind)


DEGRADATIONS = ("blur", "dark", "bright", "half")
