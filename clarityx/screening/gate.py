"""The gate: refuse photos that are not gradable fundus photographs.

Two questions, each answered with a reason a person can act on:

1. Is it a fundus photo? A cheap image test (a bright, roughly round field of
   view on a dark border, with fundus colours) and, after the classifier has
   run, an out-of-distribution test on its embedding (Mahalanobis distance to
   the training classes, :mod:`clarityx.screening.ood`).
2. Is it gradable? Exposure (too dark, washed out), focus, and how much of the
   field of view is visible.

Every limit the gate decides on is a field of :class:`~clarityx.screening.limits.GateSettings`:
the defaults in :data:`~clarityx.screening.limits.DEFAULT_GATE`, a model's own values (the
out-of-distribution limit fitted on its photos, and whatever else it was measured with) in its card's
``gate["settings"]`` (``ModelCard.gate_settings``). ``benchmarks/gate_rates.py`` measures the rates they
give on held-out fundus photos and on negatives.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from clarityx.screening.answers import looks_like_front_of_eye
from clarityx.screening.limits import DEFAULT_GATE, GateSettings
from clarityx.screening.preprocess import FieldOfView, field_of_view

ANALYSIS_SIZE = 256


@dataclass(frozen=True)
class Rejection:
    reason: str
    message: str


MESSAGES = {
    "not_fundus": ("This does not look like a retinal (fundus) photograph. ClarityX only reads photos "
                   "of the back of the eye taken with a fundus camera or a smartphone fundus adapter; "
                   "a photo of the front of the eye, a face or a screenshot cannot be graded."),
    "front_of_eye": ("This looks like a photo of the front of the eye (iris and pupil), not of the retina "
                     "at the back of the eye. ClarityX needs a fundus photograph, taken with a fundus camera "
                     "or a smartphone fundus adapter through the pupil; an eye doctor or optician can take one."),
    "too_dark": "The photo is too dark to grade. Retake it with the flash or illumination on.",
    "too_bright": "The photo is washed out (over-exposed). Retake it with less light or a shorter exposure.",
    "blurred": ("The retina is not sharp in this photo, so it cannot be graded. If the camera moved or was not "
                "focused, retake it once, held steady. If a steady, focused photo still looks hazy or blurred, the "
                "eye's own lens may be clouded (a cataract is the most common cause): that is a reason to see an "
                "eye doctor, not to keep retaking the photo."),
    "cropped": ("Too little of the retina is visible: the round field of view is cut off. Centre the "
                "eye in the frame and retake it."),
    # Said after the model has looked: most photos refused here are not fundus photographs at all (a face, a
    # scene), so that comes first; a real fundus photo from an unusual camera is the other case.
    "unfamiliar": ("This does not look like a retinal (fundus) photograph: it is unlike every photo of the back of "
                   "the eye the model was trained on. A face, a photo of the front of the eye or any other picture "
                   "cannot be graded. If it is a fundus photograph, its camera or lighting is too unusual for a "
                   "trustworthy answer: retake it with a fundus camera, or ask an eye doctor to look."),
}


def _reject(reason: str) -> Rejection:
    return Rejection(reason, MESSAGES[reason])


def measure(rgb: np.ndarray | FieldOfView, settings: GateSettings = DEFAULT_GATE) -> dict[str, float]:
    """The numbers the image test decides on (all on a fixed-size field-of-view crop).

    ``rgb``: the photo, or its :class:`~clarityx.screening.preprocess.FieldOfView` (found once per photo with
    ``settings.fov_threshold``, and shared with :func:`centre_circle` and ``prepare``)."""
    fov = settings.fov_threshold
    view = field_of_view(rgb, fov)
    box = view.box
    roundness = min(box.height, box.width) / max(box.height, box.width, 1)
    boxed = view.crop
    ch, cw = max(1, boxed.shape[0] // 12), max(1, boxed.shape[1] // 12)
    corners = [boxed[:ch, :cw], boxed[:ch, -cw:], boxed[-ch:, :cw], boxed[-ch:, -cw:]]
    corners = [c.max(axis=2).astype(np.float32) for c in corners]  # each pixel's brightest channel
    crop = view.resized(ANALYSIS_SIZE)
    bright = crop.max(axis=2).astype(np.float32)
    mask = bright > fov
    inside = crop[mask].astype(np.float32) if mask.any() else np.zeros((1, 3), np.float32)
    green = crop[:, :, 1].astype(np.float32)
    # Fine detail: what a small blur removes. The rim of the field of view is skipped.
    detail = np.abs(green - cv2.GaussianBlur(green, (0, 0), 1.5))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    return {
        "fov_fraction": float(mask.mean()),
        "corner_brightness": float(np.mean([c.mean() for c in corners])),
        # A round field of view leaves its box's corners dark; one cut off on a side still leaves the
        # two corners on its round side dark. A face, a landscape or a screenshot leaves few or none.
        "dark_corners": float(sum(c.mean() <= settings.max_corner_brightness for c in corners)),
        "red_excess": float((inside[:, 0] - inside[:, 2]).mean()),
        "red_share": float(inside[:, 0].sum() / max(inside.sum(), 1.0)),
        "brightness": float(bright[mask].mean()) if mask.any() else 0.0,
        "sharpness": float(detail[inner].mean()) if inner.any() else 0.0,
        "roundness": float(roundness),
        # Haze (a clouded lens): low contrast of the green channel, where vessels show, and a yellow cast.
        "contrast": float(green[inner].std() / max(green[inner].mean(), 1.0)) if inner.any() else 0.0,
        "blue_share": float(inside[:, 2].sum() / max(inside.sum(), 1.0)),
    }


def centre_circle(rgb: np.ndarray | FieldOfView, votes: int = DEFAULT_GATE.centre_circle_votes,
                  fov_threshold: int = DEFAULT_GATE.fov_threshold) -> bool:
    """Is there a sharp-edged circle (a pupil or an iris) centred in the field of view?

    A fundus photo has its round edges elsewhere: the optic disc sits off-centre and the fovea at the
    centre has no sharp rim. Hough transform on the blurred grey field-of-view crop; circles of 4-22%
    of the crop's side whose centre lies within 12% of the crop's centre.
    """
    crop = field_of_view(rgb, fov_threshold).resized(ANALYSIS_SIZE)
    grey = cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (0, 0), 2)
    circles = cv2.HoughCircles(grey, cv2.HOUGH_GRADIENT, dp=1, minDist=4, param1=60, param2=votes,
                               minRadius=int(ANALYSIS_SIZE * 0.04), maxRadius=int(ANALYSIS_SIZE * 0.22))
    if circles is None:
        return False
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    for x, y, r in circles[0]:
        if np.hypot(x - ANALYSIS_SIZE / 2, y - ANALYSIS_SIZE / 2) >= 0.12 * ANALYSIS_SIZE:
            continue
        # A pupil or iris rim: darker (or, behind a cataract, brighter) all the way round, not
        # an arc that crossing vessels happen to vote for.
        ring = [grey[np.clip((y + k * r * np.sin(angles)).astype(int), 0, ANALYSIS_SIZE - 1),
                     np.clip((x + k * r * np.cos(angles)).astype(int), 0, ANALYSIS_SIZE - 1)].astype(float)
                for k in (0.75, 1.3)]
        step = ring[1] - ring[0]
        if max((step > 8).mean(), (step < -8).mean()) >= 0.85:
            return True
    return False


# Refusals that are themselves a reason to see an eye doctor: a photo that stays blurred or hazy may show a
# clouded lens (cataract), which the photo of the retina cannot get past.
REFER = frozenset({"blurred"})


def check_image(rgb: np.ndarray | FieldOfView, settings: GateSettings | dict | None = None) -> Rejection | None:
    """Image test before the classifier. None when the photo may be graded.

    ``settings``: a model's (``ModelCard.gate_settings``), or changes to the defaults; None: the defaults."""
    return inspect(rgb, settings)[0]


def inspect(rgb: np.ndarray | FieldOfView, settings: GateSettings | dict | None = None
            ) -> tuple[Rejection | None, dict[str, float]]:
    """:func:`check_image` and the measures it decided on (the haze check reads them again)."""
    s = settings if isinstance(settings, GateSettings) else DEFAULT_GATE.override(settings)
    rgb = field_of_view(rgb, s.fov_threshold)  # found once, read by both tests
    m = measure(rgb, s)
    return _decide(rgb, m, s), m


def _decide(rgb: np.ndarray | FieldOfView, m: dict[str, float], s: GateSettings) -> Rejection | None:
    if m["brightness"] < s.min_brightness:
        return _reject("too_dark")
    # The reasons in the order a person should hear them: first whether it is a fundus photo at all
    # (a face, a landscape or a screenshot is "not a fundus photo", never "cut off"), then its quality.
    fundus_colour = m["red_share"] >= s.min_red_share and m["red_excess"] >= s.min_red_excess
    cut_off = m["roundness"] < s.min_roundness
    if fundus_colour and cut_off and m["dark_corners"] >= 2:
        return _reject("cropped")  # retina-coloured, the round edge visible on one side, the rest cut off
    if not fundus_colour or m["fov_fraction"] < s.min_fov_fraction \
            or m["sharpness"] > s.max_sharpness or m["corner_brightness"] > s.max_corner_brightness:
        # Refused either way; a bright, featureless image is more likely an over-exposed photo.
        washed_out = m["brightness"] > s.washed_out_brightness and m["sharpness"] < s.washed_out_sharpness
        return _reject("too_bright" if washed_out else "not_fundus")
    if cut_off:
        return _reject("cropped")
    if m["brightness"] > s.max_brightness:
        return _reject("too_bright")
    if m["sharpness"] < s.min_sharpness:
        return _reject("blurred")
    if centre_circle(rgb, int(s.centre_circle_votes), s.fov_threshold):
        return _reject("front_of_eye")
    return None


def check_embedding(classifier, embedding: np.ndarray) -> Rejection | None:
    """Tests on the classifier's embedding: the model's front-of-eye probe (fitted on real photos of the front
    of the eye), then the out-of-distribution test (when the model has its statistics and its card a limit)."""
    if looks_like_front_of_eye(classifier.card.answers, embedding):
        return _reject("front_of_eye")
    limit = classifier.card.gate_settings.max_ood_distance
    if limit is None or classifier.ood is None:
        return None
    distance = classifier.ood_distance(embedding)
    return _reject("unfamiliar") if distance > limit else None
