"""The model card: everything a user (and the app) needs to know about a trained model.

Kept free of TensorFlow so the app can read it before the model has loaded.

A card file (``NAME.card.json`` beside the model) has a schema, :data:`SCHEMA_VERSION`; :func:`validate`
checks every field's presence and type, and :meth:`ModelCard.load` refuses a damaged or hand-edited
card with :class:`~clarityx.screening.errors.CardInvalid`, saying which field is wrong and how. A card in
an older layout is brought up to date on load (:func:`migrate`), so models trained before a change of
schema keep working. Each figure is stored once; the test photos are listed in the split file beside
the model (``NAME.split.csv``), not in the card.
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path

from clarityx.screening.classes import CLASSES, DIABETIC_RETINOPATHY, UNRECOGNISED
from clarityx.screening.errors import CardInvalid
from clarityx.screening.grades import is_grade_model
from clarityx.screening.limits import NAMES as GATE_SETTINGS, OPTIONAL as GATE_OPTIONAL, GateSettings
from clarityx.screening.preprocess import CONTRASTS

CARD_SUFFIX = ".card.json"
SCHEMA_VERSION = 3


def _names(classes) -> str:
    return ", ".join(c.replace("_", " ") for c in classes)


def default_intended_use(classes, data: str | None = None) -> str:
    """What a model with these outputs is for, in a user's words (``data``: what it was trained on, for a
    model trained on a person's own photos; the bundled model's words otherwise)."""
    if data:
        return (f"Trained on {data}: ranks how much a retinal fundus photograph resembles each of "
                f"{_names(classes)}, for the people and cameras that data comes from. Not a diagnosis; it cannot "
                "rule disease out.")
    if is_grade_model(classes):
        return ("Screening aid for adults with diabetes at home: grades how much diabetic retinopathy a retinal "
                "fundus photograph shows (0 none, 1 mild, 2 moderate, 3 severe, 4 proliferative) and flags "
                "possible referable retinopathy (grade 2 or worse). Not a diagnosis; it cannot rule disease out.")
    return ("Screening aid for adults at home: ranks how much a retinal fundus photograph resembles "
            f"each of {_names(classes)}"
            + (" and flags possible referable diabetic retinopathy" if DIABETIC_RETINOPATHY in classes else "")
            + ". Not a diagnosis; it cannot rule disease out.")


def default_limitations(classes, camera_probe: bool = True, public_data: bool = True,
                        grade_layer: bool = False) -> list[str]:
    """The limitations every card of a model with these outputs states (``camera_probe``: the card has a
    camera probe to point to; ``public_data``: trained on the public research collections; ``grade_layer``: its
    referable score comes from a DR-grade layer whose threshold was fitted with the outside sets)."""
    out = ["A screening aid, not a diagnosis: it can miss disease and raise false alarms; it cannot rule "
           "disease out."]
    if is_grade_model(classes):
        out.append("Grades diabetic retinopathy only. Other eye conditions (cataract, glaucoma, macular "
                   f"degeneration, {UNRECOGNISED}) are not recognised: grade 0 means no retinopathy was "
                   "seen, not a healthy eye.")
    else:
        out.append(f"Knows {len(classes)} classes ({_names(classes)}). Other conditions — {UNRECOGNISED} — "
                   "are not recognised and may be called 'normal'; the card says how often.")
    out.append(("Trained on public research photos from a few cameras and hospitals" if public_data else
                "Trained on one dataset's photos") + "; accuracy on other cameras, smartphone adapters and "
               "populations is unknown and likely lower.")
    if camera_probe:
        out.append("The model can still tell the camera apart (see the camera probe in the card): some of what it "
                   "learned may be the camera rather than the disease.")
    if DIABETIC_RETINOPATHY in classes and grade_layer:
        out.append("The diabetic-retinopathy grade is an estimate; referable retinopathy (grade 2 or worse) is "
                   "flagged at a threshold fitted for 87% sensitivity on validation photos and photos from other "
                   "hospitals. To keep that sensitivity across cameras it also flags many healthy eyes (see the "
                   "card's figures): a flag is a prompt to get checked, not a finding.")
    elif DIABETIC_RETINOPATHY in classes:
        out.append("Diabetic retinopathy is detected, not graded; referable retinopathy (moderate or worse) is "
                   "flagged at a threshold chosen for 90% sensitivity on validation photos, and mild "
                   "retinopathy is often missed.")
    out.append("Probabilities are rescaled by a temperature fitted on held-out photos of the same data; the "
               "card's calibration error (ECE) on test photos says how far they can be taken at face value. "
               "They are not calibrated for other populations.")
    return out


LIMITATIONS = default_limitations(CLASSES)


@dataclass
class ModelCard:
    """Everything a user (and the app) needs to know about a trained model."""

    name: str
    classes: list[str]
    input_size: int
    backbone: str
    architecture: str
    initialisation: str
    version: str = "0"
    temperature: float = 1.0
    log_prior_correction: list[float] | None = None  # undoes class weighting (see metrics.apply_temperature)
    contrast: str = "none"                            # preprocess.prepare's camera normalisation
    dr_threshold: float | None = None                 # referable-DR score from which referable DR is flagged
    calibration: dict = field(default_factory=dict)   # how the three figures above were chosen
    intended_use: str = default_intended_use(CLASSES)
    limitations: list[str] = field(default_factory=lambda: list(LIMITATIONS))
    data: dict = field(default_factory=dict)
    audit: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)          # how the split was made; its photos: NAME.split.csv
    metrics: dict = field(default_factory=dict)
    comparison: list[dict] = field(default_factory=list)
    gate: dict = field(default_factory=dict)           # "settings": the gate's limits (limits.GateSettings)
    training: dict = field(default_factory=dict)
    answers: dict = field(default_factory=dict)        # heads on the embedding and checks (ANSWERS, below)

    @property
    def gate_settings(self) -> GateSettings:
        """The gate's limits for this model: those its card records, the defaults for the rest."""
        return GateSettings.from_card(self.gate.get("settings"))

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}

    def save(self, path: str | Path) -> None:
        """Write the card (checked first: a card that would not load again is never written)."""
        from clarityx.screening.files import write_text

        data = self.to_dict()
        validate(data, Path(path).name)
        write_text(path, json.dumps(data, indent=2) + "\n")

    @classmethod
    def from_dict(cls, data, source: str = "the model card", path: Path | None = None) -> ModelCard:
        """A card from its JSON object, brought up to the current schema and checked; ``source`` names it in
        messages, ``path`` (the card file) lets an old card find its split file."""
        data = migrate(data, source, path)
        validate(data, source)
        return cls(**{k: v for k, v in data.items() if k != "schema_version"})

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        """Read a card file. Raises OSError when it cannot be read, :class:`CardInvalid` when it is damaged,
        hand-edited into something else, or from a newer ClarityX."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CardInvalid(f"{path.name} is not a readable model card (not JSON: {exc}).") from exc
        return cls.from_dict(data, path.name, path)


def card_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + CARD_SUFFIX)


def markdown_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".card.md")


def split_path(model_path: str | Path) -> Path:
    """The model's split file (``clarityx.data.split``): every photo with its part; its test photos are the
    card's."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".split.csv")


# ---- the schema -------------------------------------------------------------------------------------


def _text(v) -> bool:
    return isinstance(v, str)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _object(v) -> bool:
    return isinstance(v, dict)


def _list_of(check: Callable) -> Callable:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _or_null(check: Callable) -> Callable:
    return lambda v: v is None or check(v)


# field → (check, what it must be, in words). Required: the fields without a default in ModelCard.
FIELDS: dict[str, tuple[Callable, str]] = {
    "schema_version": (_whole, "a whole number"),
    "name": (_text, "text"),
    "classes": (lambda v: _list_of(_text)(v) and len(v) > 0, "a non-empty list of class names"),
    "input_size": (lambda v: _whole(v) and v >= 32, "a whole number of pixels, at least 32"),
    "backbone": (_text, "text"),
    "architecture": (_text, "text"),
    "initialisation": (_text, "text"),
    "version": (_text, "text"),
    "temperature": (lambda v: _number(v) and v > 0, "a positive number"),
    "log_prior_correction": (_or_null(_list_of(_number)), "a list of numbers, one per class, or null"),
    "contrast": (lambda v: v in CONTRASTS, "one of " + ", ".join(map(repr, CONTRASTS))),
    "dr_threshold": (_or_null(_number), "a number or null"),
    "calibration": (_object, "an object ({...})"),
    "intended_use": (_text, "text"),
    "limitations": (_list_of(_text), "a list of texts"),
    "data": (_object, "an object ({...})"),
    "audit": (_object, "an object ({...})"),
    "split": (_object, "an object ({...})"),
    "metrics": (_object, "an object ({...})"),
    "comparison": (_list_of(_object), "a list of objects"),
    "gate": (_object, "an object ({...})"),
    "training": (_object, "an object ({...})"),
    "answers": (_object, "an object ({...})"),
}

# The card's ``answers``: what the app computes beside the classes, from the embedding and the photo as taken
# (clarityx.screening.answers). Each entry's arrays, with the length each must have (E: the embedding's width).
ANSWERS = {
    "dr_grade": ("weights (E x 5), bias (5), temperature: the DR-grade layer on the embedding; the referable "
                 "score is P(grade >= 2)"),
    "haze": "mean, sd, weights, bias, threshold over `inputs`: a clouded lens's haze, from the photo as taken",
    "front_of_eye": "mean, sd, weights (E), bias, threshold: real front-of-eye photos told from fundus photos",
}
REQUIRED = ("schema_version",) + tuple(
    name for name, f in ModelCard.__dataclass_fields__.items() if f.default is f.default_factory is MISSING)
FIX = ("A card is written by train.py: if it was edited by hand, undo the edit; otherwise reinstall the model "
       "with its card.")


def _shown(value) -> str:
    kind = {str: "text", bool: "true/false", int: "a number", float: "a number", list: "a list", dict: "an object",
            type(None): "null"}.get(type(value), type(value).__name__)
    text = json.dumps(value)
    return f"{kind} ({text if len(text) <= 40 else text[:37] + '...'})"


def validate(data, source: str = "the model card") -> None:
    """Check a card's JSON object against the current schema; raise :class:`CardInvalid` naming the first
    field that is missing, unknown or of the wrong type, and what it must be."""
    if not isinstance(data, dict):
        raise CardInvalid(f"{source} is not a model card: it holds {_shown(data)}, not an object. {FIX}")
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise CardInvalid(f"{source} lacks the field{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(map(repr, missing))}. {FIX}")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise CardInvalid(f"{source} has the unknown field{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))} (a misspelt name?). {FIX}")
    for name, value in data.items():
        check, expected = FIELDS[name]
        if not check(value):
            raise CardInvalid(f"{source}: '{name}' must be {expected}, not {_shown(value)}. {FIX}")
    if data.get("log_prior_correction") is not None and len(data["log_prior_correction"]) != len(data["classes"]):
        raise CardInvalid(f"{source}: 'log_prior_correction' has {len(data['log_prior_correction'])} numbers for "
                          f"{len(data['classes'])} classes. {FIX}")
    _validate_answers(data.get("answers", {}), source)
    settings = data.get("gate", {}).get("settings", {})
    if not isinstance(settings, dict):
        raise CardInvalid(f"{source}: 'gate.settings' must be an object ({{...}}), not {_shown(settings)}. {FIX}")
    for name, value in settings.items():
        if name not in GATE_SETTINGS:
            raise CardInvalid(f"{source}: 'gate.settings' has the unknown setting '{name}' (known: "
                              f"{', '.join(sorted(GATE_SETTINGS))}). {FIX}")
        if not (_number(value) or (value is None and name in GATE_OPTIONAL)):
            raise CardInvalid(f"{source}: 'gate.settings.{name}' must be a number, not {_shown(value)}. {FIX}")


def _validate_answers(answers: dict, source: str) -> None:
    for name, entry in answers.items():
        where = f"{source}: 'answers.{name}'"
        if name not in ANSWERS:
            raise CardInvalid(f"{where} is unknown (known: {', '.join(ANSWERS)}). {FIX}")
        if not isinstance(entry, dict):
            raise CardInvalid(f"{where} must be an object ({{...}}), not {_shown(entry)}. {FIX}")
        need = ("weights", "bias", "temperature") if name == "dr_grade" else ("mean", "sd", "weights", "bias",
                                                                              "threshold")
        missing = [k for k in need if k not in entry]
        if missing:
            raise CardInvalid(f"{where} lacks {', '.join(map(repr, missing))}. {FIX}")
        if name == "dr_grade":
            w, b = entry["weights"], entry["bias"]
            ok = (_list_of(_list_of(_number))(w) and w and all(len(r) == 5 for r in w)
                  and _list_of(_number)(b) and len(b) == 5
                  and _number(entry["temperature"]) and entry["temperature"] > 0)
            if not ok:
                raise CardInvalid(f"{where} must hold weights of 5 numbers per row, 5 biases and a positive "
                                  f"temperature. {FIX}")
        else:
            n = len(entry["weights"]) if isinstance(entry["weights"], list) else -1
            vectors = all(_list_of(_number)(entry[k]) and len(entry[k]) == n for k in ("mean", "sd", "weights"))
            if n < 1 or not vectors or not (_number(entry["bias"]) and _number(entry["threshold"])) \
                    or any(v <= 0 for v in entry["sd"]):
                raise CardInvalid(f"{where} must hold mean, sd (positive) and weights of one length, a bias and a "
                                  f"threshold. {FIX}")


# ---- older layouts ----------------------------------------------------------------------------------

_TEST_LISTS = ("test_files", "test_labels", "test_sources", "test_grades", "test_groups", "test_conditions")


def migrate(data, source: str = "the model card", path: Path | None = None):
    """A card's JSON object in the current layout (a new dict; ``data`` is not changed).

    Schema 1 (no ``schema_version``; cards written until this change) → 2: the calibration's copies of
    ``temperature``, ``log_prior_correction`` and ``dr_threshold`` are dropped (the top-level fields are
    the figures); the gate's limit moves into ``gate["settings"]`` and the copy of it (and of where it
    was fitted) under ``gate["measured"]`` goes; Keras' version is kept once, in
    ``training["library_versions"]``; the test file lists leave the card for the split file beside the
    model, the card keeping where the data root lies relative to that file (``split["data_root"]``), for
    ``clarityx evaluate DATA``. Schema 2 → 3 adds the optional ``answers`` (nothing to move)."""
    if not isinstance(data, dict):
        return data  # validate says what is wrong
    version = data.get("schema_version", 1)
    if not _whole(version) or version < 1:
        raise CardInvalid(f"{source}: 'schema_version' must be a whole number from 1 to {SCHEMA_VERSION}, not "
                          f"{_shown(version)}. {FIX}")
    if version > SCHEMA_VERSION:
        raise CardInvalid(f"{source} was written by a newer ClarityX (card schema {version}; this one reads up to "
                          f"{SCHEMA_VERSION}). Update ClarityX (git pull, then pip install again) to use this model.")
    if version == SCHEMA_VERSION:
        return dict(data)
    data = json.loads(json.dumps(data))  # a deep copy
    if version >= 2:  # 2 → 3 adds the optional ``answers``
        data["schema_version"] = SCHEMA_VERSION
        return data
    calibration = data.get("calibration")
    if isinstance(calibration, dict):
        for copy, figure in (("temperature", "temperature"), ("log_prior_correction", "log_prior_correction"),
                             ("dr_referable_threshold", "dr_threshold")):
            if copy in calibration:
                value = calibration.pop(copy)
                data.setdefault(figure, value)
    gate = data.get("gate")
    if isinstance(gate, dict):
        measured = gate.get("measured") if isinstance(gate.get("measured"), dict) else {}
        limit = gate.pop("max_ood_distance", measured.get("ood_threshold"))
        measured.pop("ood_threshold", None)
        fitted_on = measured.pop("ood_threshold_fitted_on", None)  # what gate_rates.py last fitted the limit on
        if fitted_on is None and "target_validation_frr" in measured:
            fitted_on = f"the validation photos' {100 * (1 - measured['target_validation_frr']):.0f}th percentile"
        if fitted_on is not None:
            gate["max_ood_distance_fitted_on"] = fitted_on
        if limit is not None:
            data["gate"] = {"settings": {**(gate.pop("settings", None) or {}), "max_ood_distance": limit}, **gate}
    training = data.get("training")
    versions = training.get("library_versions") if isinstance(training, dict) else None
    if isinstance(versions, dict) and "keras" in versions and training.get("keras") == versions["keras"]:
        training.pop("keras", None)
    split = data.get("split")
    if isinstance(split, dict) and any(k in split for k in _TEST_LISTS):
        files = split.get("test_files") or []
        for key in _TEST_LISTS:
            split.pop(key, None)
        root = _data_root(files[0], path) if files and path is not None else None
        if root is not None:
            split["data_root"] = root
    data["schema_version"] = SCHEMA_VERSION
    return data


def _data_root(test_file: str, card_file: Path) -> str | None:
    """Where the data root (which an old card's test files were relative to) lies relative to the split file
    beside the card: found from the split file's row of that test file. None without a split file."""
    split_file = card_file.with_name(card_file.name[: -len(CARD_SUFFIX)] + ".split.csv") \
        if card_file.name.endswith(CARD_SUFFIX) else None
    if split_file is None or not split_file.is_file():
        return None
    with open(split_file, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            written = Path(row.get("path") or "").as_posix()
            if written == test_file:
                return "."
            if written.endswith("/" + test_file):
                return os.path.normpath(written[: -len(test_file) - 1])
    return None
