"""Every setting ClarityX takes from the environment, and where its files live: one place.

No other module reads a ``CLARITYX_*`` variable; each asks here. The README lists the same table.

========================== ==========================================================================
``CLARITYX_MODEL``         the model to use (a ``.keras`` or ``.onnx`` file, its ``.card.json`` beside it)
``CLARITYX_MODELS_DIR``    the folder of installed models the app offers and Retrain installs into (default: the user's)
``CLARITYX_ENGINE``        ``auto`` (default) | ``onnx`` | ``keras``: which engine runs a ``.keras`` model
``CLARITYX_HISTORY``       the history database file (``settings.json`` and ``training/`` sit beside it)
``CLARITYX_LITE0_CHECKPOINT`` the EfficientNet-Lite0 ImageNet ``.pth`` file for ``train.py --weights lite0-imagenet``
========================== ==========================================================================

The per-user data folder comes from :mod:`platformdirs`: ``~/.local/share/clarityx`` on Linux,
``~/Library/Application Support/clarityx`` on macOS and ``%LOCALAPPDATA%\\clarityx`` on Windows —
the local profile, never the roaming one, which many organisations copy to their servers (health
data must stay on this machine).

The bundled model is found in the source checkout's ``models/`` folder (a checkout: the folder above the
package holds a ``pyproject.toml`` naming the project ``clarityx``; in a wheel install that folder is
``site-packages``, whose ``models/`` may belong to any other package, so it never counts), else inside the installed
package (``clarityx/bundled_models``, which a wheel built from a checkout carries: the ONNX graph,
its card and gate statistics), else nowhere: the error then names :func:`user_models_dir` as the
place to put one.
"""
from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "clarityx"
BUNDLED_NAME = "clarityx_lite2"

MODEL_ENV = "CLARITYX_MODEL"
MODELS_DIR_ENV = "CLARITYX_MODELS_DIR"
ENGINE_ENV = "CLARITYX_ENGINE"
HISTORY_ENV = "CLARITYX_HISTORY"
LITE0_CHECKPOINT_ENV = "CLARITYX_LITE0_CHECKPOINT"

ENVIRONMENT = {  # name → what it sets (the README's table)
    MODEL_ENV: "the model to use: a .keras or .onnx file with its .card.json beside it",
    MODELS_DIR_ENV: "the folder of installed models the app offers and Retrain installs into",  # see models_dir
    ENGINE_ENV: "auto (default), onnx or keras: the engine that runs a .keras model",
    HISTORY_ENV: "the history database file; settings.json and training/ sit beside it",
    LITE0_CHECKPOINT_ENV: "the EfficientNet-Lite0 ImageNet .pth file (train.py --weights lite0-imagenet)",
}
ENGINES = ("auto", "onnx", "keras")



def checkout_root(package_dir: Path) -> Path | None:
    """The source checkout the package at ``package_dir`` runs from (a clone, an editable install): the
    folder above it when that folder's ``pyproject.toml`` names this project; else None (a wheel install,
    where the folder above is ``site-packages``)."""
    import tomllib

    root = package_dir.parent
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return root if isinstance(project, dict) and project.get("name") == APP_NAME else None


_CHECKOUT = checkout_root(Path(__file__).resolve().parents[1])
CHECKOUT_MODELS: Path | None = _CHECKOUT / "models" if _CHECKOUT else None  # None: not run from a checkout
PACKAGED_MODELS = Path(__file__).resolve().parents[1] / "bundled_models"  # inside an installed wheel


def env(name: str) -> str | None:
    """The variable's value, or None when unset or empty."""
    if name not in ENVIRONMENT:
        raise KeyError(f"{name} is not a ClarityX setting (add it to clarityx.screening.settings)")
    return os.environ.get(name) or None


def user_data_dir() -> Path:
    """This user's ClarityX folder on this machine (local, not roaming, on Windows)."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False, roaming=False))


def history_path() -> Path:
    """``$CLARITYX_HISTORY``, else ``history.sqlite3`` in the user data folder."""
    override = env(HISTORY_ENV)
    return Path(override) if override else user_data_dir() / "history.sqlite3"


def settings_file() -> Path:
    """The app's remembered choices (model, allowed data folders), beside the history."""
    return history_path().with_name("settings.json")


def training_dir() -> Path:
    """Where background retraining keeps its state, staging folder and pixel cache."""
    return history_path().parent / "training"


def user_models_dir() -> Path:
    """This user's models: where Retrain installs and where to put models of one's own (or when ClarityX is
    installed without a checkout)."""
    return user_data_dir() / "models"


def _checkout_models() -> bool:
    """True when ClarityX runs from its checkout and that checkout has a ``models/`` folder."""
    return CHECKOUT_MODELS is not None and CHECKOUT_MODELS.is_dir()


def bundled_model() -> Path:
    """The bundled model: the checkout's ``.keras`` (run on its ONNX graph), else the packaged
    ONNX graph, else where a person should put one (which does not exist yet)."""
    if _checkout_models():
        return CHECKOUT_MODELS / f"{BUNDLED_NAME}.keras"
    packaged = PACKAGED_MODELS / f"{BUNDLED_NAME}.onnx"
    if packaged.is_file():
        return packaged
    return user_models_dir() / f"{BUNDLED_NAME}.onnx"


def model_path() -> Path:
    """``$CLARITYX_MODEL`` if set, else the bundled model."""
    override = env(MODEL_ENV)
    return Path(override) if override else bundled_model()


def models_dir() -> Path:
    """The folder of installed models, where Retrain installs: ``$CLARITYX_MODELS_DIR``, else the user's
    models folder in the user data folder — never the source checkout (a retrained model is the person's,
    not the repository's)."""
    override = env(MODELS_DIR_ENV)
    return Path(override) if override else user_models_dir()


def model_folders() -> list[Path]:
    """Every folder whose models the app offers: the checkout's ``models/`` (the bundled model and any made
    with ``train.py`` there), then :func:`models_dir`."""
    folders = [CHECKOUT_MODELS] if _checkout_models() else []
    return list(dict.fromkeys([*folders, models_dir()]))


def engine() -> str:
    """``$CLARITYX_ENGINE`` or ``auto``; an unknown value is an error that names the choices."""
    value = env(ENGINE_ENV) or "auto"
    if value not in ENGINES:
        raise ValueError(f"unknown engine {value!r} in {ENGINE_ENV}: choose from {', '.join(ENGINES)}")
    return value


def lite0_checkpoint() -> Path | None:
    override = env(LITE0_CHECKPOINT_ENV)
    return Path(override) if override else None
