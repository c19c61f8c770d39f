"""The models a person can choose from, and the choice remembered between runs.

A model is any ``NAME.keras`` or ``NAME.onnx`` in the checkout's ``models/`` or the models folder
(``$CLARITYX_MODELS_DIR``, else the user's; see :mod:`clarityx.screening.settings`) with
``NAME.card.json`` beside it; ``$CLARITYX_MODEL`` adds one from elsewhere. The choice is kept in
``settings.json`` beside the history file, written atomically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clarityx.screening.card import CARD_SUFFIX, ModelCard
from clarityx.screening.engine import default_model_path
from clarityx.screening.files import write_text
from clarityx.screening.tested import is_untested
from clarityx.screening.settings import MODELS_DIR_ENV, model_folders, settings_file

__all__ = ["MODELS_DIR_ENV", "ModelEntry", "available_models", "settings_path", "remembered_model", "remember_model"]


@dataclass(frozen=True)
class ModelEntry:
    path: Path
    name: str
    classes: tuple[str, ...]
    trained: str
    untested: bool = False  # tested on too few photos to tell how well it works (clarityx.screening.tested)

    @property
    def label(self) -> str:
        return (f"{self.name} — {len(self.classes)} classes, trained {self.trained}"
                + (" — untested: too few test photos to tell how well it works" if self.untested else ""))


def available_models(folder: Path | None = None) -> list[ModelEntry]:
    """Every model with a readable card in ``folder`` (default: the checkout's models and the installed
    ones, :func:`~clarityx.screening.settings.model_folders`), plus ``$CLARITYX_MODEL``; the default model first."""
    folders = [folder] if folder else model_folders()
    candidates = [default_model_path()] + [c for f in folders for c in sorted(f.glob(f"*{CARD_SUFFIX}"))]
    found: dict[Path, ModelEntry] = {}
    for item in candidates:
        stem = item.name[: -len(CARD_SUFFIX)] if item.name.endswith(CARD_SUFFIX) else item.stem
        model = next((p for p in (item.with_name(stem + ".keras"), item.with_name(stem + ".onnx")) if p.is_file()),
                     None)
        card = item.with_name(stem + CARD_SUFFIX)
        if model is None or not card.is_file() or model.resolve() in found:
            continue
        try:
            c = ModelCard.load(card)
        except (OSError, ValueError, TypeError):
            continue  # a damaged card: not offered (loading it directly gives the message)
        found[model.resolve()] = ModelEntry(model, c.name, tuple(c.classes),
                                            str(c.training.get("finished", "unknown date")), is_untested(c.metrics))
    return list(found.values())


def settings_path() -> Path:
    return settings_file()


def remembered_model() -> str | None:
    try:
        return json.loads(settings_path().read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return None


def remember_model(path: Path) -> None:
    try:
        current = json.loads(settings_path().read_text())
    except (OSError, ValueError):
        current = {}
    write_text(settings_path(), json.dumps({**current, "model": str(path)}))
