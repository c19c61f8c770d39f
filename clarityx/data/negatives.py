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


def front_of_eye_closeup(rng: np.random.Generator, size: int) -> np.ndarray:
    """What people at home most often give instead of a fundus photo: a phone close-up of the front of
    the eye — iris with radial fibres, a pupil (black, or grey-white behind a cataract) with the flash's
    reflection, sclera with fine red vessels, lids and lashes — often cropped to a circle on black and
    tinted orange by the light or a filter."""
    w = size
    img = np.zeros((w, w, 3), np.float32)
    skin = rng.uniform([150, 100, 80], [235, 190, 160])
    img[:] = skin
    c = np.array([w / 2, w / 2]) + rng.uniform(-0.06, 0.06, 2) * w
    ci = (int(c[0]), int(c[1]))
    open_h = rng.uniform(0.22, 0.4)
    cv2.ellipse(img, ci, (int(w * 0.55), int(w * open_h)), 0, 0, 360, tuple(rng.uniform(200, 245, 3)), -1)
    for _ in range(int(rng.integers(3, 12))):  # scleral vessels
        a = c + rng.uniform(-0.5, 0.5, 2) * w * np.array([1.0, open_h * 1.5])
        b = a + rng.uniform(-0.12, 0.12, 2) * w
        cv2.line(img, tuple(int(v) for v in a), tuple(int(v) for v in b), (190, 60, 60), 1)
    r_iris = w * rng.uniform(0.18, 0.3)
    iris = rng.uniform([20, 20, 10], [150, 130, 110])
    cv2.circle(img, ci, int(r_iris), tuple(iris), -1)
    for angle in np.linspace(0, 2 * np.pi, int(rng.integers(60, 160)), endpoint=False):  # radial fibres
        shade = tuple(iris * rng.uniform(0.5, 1.5))
        p0 = c + r_iris * 0.35 * np.array([np.cos(angle), np.sin(angle)])
        p1 = c + r_iris * 0.97 * np.array([np.cos(angle), np.sin(angle)])
        cv2.line(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1), shade, 1)
    cv2.circle(img, ci, int(r_iris), tuple(iris * 0.4), 2)  # limbal ring
    r_pupil = r_iris * rng.uniform(0.25, 0.55)
    cataract = rng.random() < 0.5
    pupil = rng.uniform(120, 210, 3) * [1, 1, 0.95] if cataract else rng.uniform(0, 25, 3)
    cv2.circle(img, ci, int(r_pupil), tuple(pupil), -1)
    glint = (int(c[0] + r_pupil * rng.uniform(-0.6, 0.6)), int(c[1] - r_pupil * rng.uniform(0, 0.6)))
    cv2.circle(img, glint, max(2, int(w * 0.015)), (255, 255, 255), -1)
    for lid in (-1, 1):  # lid margins and lashes
        y = c[1] + lid * w * open_h
        cv2.ellipse(img, ci, (int(w * 0.55), int(w * open_h)), 0, 180 if lid < 0 else 0, 360 if lid < 0 else 180,
                    (60, 40, 35), 3)
        for x in np.linspace(c[0] - w * 0.4, c[0] + w * 0.4, int(rng.integers(15, 40))):
            cv2.line(img, (int(x), int(y)), (int(x + rng.uniform(-8, 8)), int(y + lid * rng.uniform(8, 25))),
                     (25, 20, 20), 1)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
    img *= rng.uniform([0.9, 0.5, 0.2], [1.3, 1.0, 0.8]) if rng.random() < 0.7 else 1.0  # orange tint
    img += rng.normal(0, 5, img.shape)
    if rng.random() < 0.8:  # cropped to a circle on black, like a fundus camera's field of view
        mask = np.zeros((w, w), np.uint8)
        cv2.circle(mask, (w // 2, w // 2), int(w * rng.uniform(0.38, 0.48)), 1, -1)
        img *= mask[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


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
        ("front_of_eye_closeup", front_of_eye_closeup),
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
