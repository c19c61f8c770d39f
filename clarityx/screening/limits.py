"""Every limit the gate and the answer decide on, in one place: :class:`GateSettings`.

The defaults are :data:`DEFAULT_GATE`. A model's card records the values it was measured with
(``gate["settings"]``: ``train.py`` writes them, with the out-of-distribution limit it fitted, and
``benchmarks/gate_rates.py --write-card`` with the rates they give); at run time the gate takes a
model's recorded values where its card has them, and the defaults for the rest
(:meth:`GateSettings.from_card`, ``ModelCard.gate_settings``).

Used by :mod:`clarityx.screening.imageio` (the file and photo sizes), :mod:`clarityx.screening.preprocess`
(the field of view), :mod:`clarityx.screening.gate` (the image test and the out-of-distribution test)
and ``app_pages.guidance`` (when an answer is uncertain, and which classes are weak spots).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class GateSettings:
    # Decoding (imageio): refused before any pixel is looked at.
    max_file_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 60_000_000  # well above any fundus camera (a 24 MP DSLR is 24e6)
    min_side: int = 128           # shorter side, in pixels: a thumbnail cannot show the retina
    # The field of view: a pixel belongs to it when its brightest channel exceeds this, 0..255.
    fov_threshold: int = 20

    # The image test (gate.check_image). Set by hand from ~1,000 of the shared fundus photos (a
    # sub-sample of all originals, every split and class): each limit sits just outside the range those
    # photos span, so the image test only refuses clear cases; the model-based test (max_ood_distance,
    # fitted per model) refuses the subtler ones.
    min_fov_fraction: float = 0.25     # share of the square crop inside the field of view (min seen 0.28)
    min_red_share: float = 0.30        # R / (R + G + B) inside the field of view (min seen 0.304)
    min_red_excess: float = 8.0        # mean (R - B) inside the field of view: colour, not grey
    min_brightness: float = 25.0       # mean brightness inside the field of view, 0..255 (min seen 28)
    max_brightness: float = 252.0      # (max seen 251; cataract photos are often very bright)
    washed_out_brightness: float = 200.0  # a refused image this bright and featureless is called
    washed_out_sharpness: float = 2.0     # over-exposed rather than "not a fundus photo"
    min_sharpness: float = 0.375       # fine green-channel detail inside the field of view: the 0.1% quantile of
                                       # training photos (scripts/fit_sharpness.py; 0.25 caught half of blurred photos)
    max_sharpness: float = 7.0         # a retina has little fine texture (max seen 5.6; natural photos 3-13)
    max_corner_brightness: float = 90.0  # corners of the field of view's box are dark outside a round
                                         # field (99% of training photos under 70; natural photos 90-200)
    min_roundness: float = 0.6         # short / long side of the field of view's box (min seen 0.63)
    # A sharp-edged circle (pupil or iris) centred in the field of view: the front of an eye.
    # Hough accumulator threshold fitted by scripts/fit_front_of_eye.py on training photos only:
    centre_circle_votes: int = 30      # refuses 0.13% of 1,493 training photos, 90% of design negatives

    # The out-of-distribution test on the model's embedding (gate.check_embedding): Mahalanobis distance
    # above which a photo is "unfamiliar". Fitted per model by train.py; None: no such test.
    max_ood_distance: float | None = None

    # The answer (app_pages.guidance): a top probability under this is called uncertain, and a class
    # whose recall on the model's test photos is under weak_recall is named as a weak spot.
    uncertain: float = 0.5
    weak_recall: float = 0.6

    @classmethod
    def from_card(cls, recorded: Mapping | None) -> GateSettings:
        """The values a card's ``gate["settings"]`` records, the defaults for the rest."""
        return DEFAULT_GATE.override(recorded)

    def override(self, changes: Mapping | None) -> GateSettings:
        """These settings with some values changed (a script trying another limit)."""
        return replace(self, **dict(changes or {}))

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_GATE = GateSettings()
NAMES = frozenset(f.name for f in fields(GateSettings))
# The names whose value may be None (every other one is a number).
OPTIONAL = frozenset({"max_ood_distance"})
