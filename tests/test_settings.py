"""One place for each setting: the CLARITYX_* variables, the user data folder, where models are found."""
import re
from pathlib import Path

import pytest

from clarityx.screening import settings
from clarityx.screening.engine import missing_model_message

ROOT = Path(__file__).resolve().parent.parent
# Modules still reading a variable themselves, owned by other work in progress (remove each once it
# asks settings: history.default_history_path → settings.history_path; shared.py → settings.env(MODEL_ENV);
# retrain.py's job() → TrainingJob(settings.training_dir(), settings.models_dir())).
PENDING: set[str] = set()


def test_no_module_but_settings_reads_a_clarityx_variable():
    readers = []
    for path in [*(ROOT / "clarityx").rglob("*.py"), ROOT / "app.py", *(ROOT / "app_pages").glob("*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        if rel == "clarityx/screening/settings.py" or rel in PENDING:
            continue
        text = path.read_text()
        if re.search(r"os\.environ(\.get)?\s*[\[(]\s*[\"']CLARITYX_|getenv\(\s*[\"']CLARITYX_", text) or \
                re.search(r"os\.environ(\.get)?\s*[\[(]\s*[A-Z_]*_ENV\b", text):
            readers.append(rel)
    assert readers == []


def test_every_variable_is_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert [name for name in settings.ENVIRONMENT if f"`{name}`" not in readme] == []
    with pytest.raises(KeyError):
        settings.env("CLARITYX_NO_SUCH_SETTING")


def test_the_user_data_folder_is_the_local_one_never_roaming(monkeypatch):
    import platformdirs

    calls = []
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *a, **k: calls.append((a, k)) or "/somewhere/clarityx")
    monkeypatch.delenv("CLARITYX_HISTORY", raising=False)
    assert settings.history_path() == Path("/somewhere/clarityx/history.sqlite3")
    assert settings.settings_file() == Path("/somewhere/clarityx/settings.json")
    assert calls and all(k.get("roaming") is False for _, k in calls)


def test_variables_override_the_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CLARITYX_HISTORY", str(tmp_path / "h.sqlite3"))
    monkeypatch.setenv("CLARITYX_MODEL", str(tmp_path / "m.onnx"))
    monkeypatch.setenv("CLARITYX_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CLARITYX_ENGINE", "keras")
    assert settings.history_path() == tmp_path / "h.sqlite3"
    assert settings.training_dir() == tmp_path / "training"
    assert settings.model_path() == tmp_path / "m.onnx"
    assert settings.models_dir() == tmp_path / "models"
    assert settings.engine() == "keras"
    monkeypatch.setenv("CLARITYX_ENGINE", "gpu")
    with pytest.raises(ValueError, match="auto, onnx, keras"):
        settings.engine()


def test_an_install_without_a_checkout_finds_the_packaged_model_or_says_where_to_put_one(monkeypatch, tmp_path):
    monkeypatch.delenv("CLARITYX_MODEL", raising=False)
    monkeypatch.delenv("CLARITYX_MODELS_DIR", raising=False)
    monkeypatch.setattr(settings, "CHECKOUT_MODELS", tmp_path / "no-checkout" / "models")
    monkeypatch.setattr(settings, "PACKAGED_MODELS", tmp_path / "bundled_models")
    monkeypatch.setattr(settings, "user_data_dir", lambda: tmp_path / "user")
    assert settings.bundled_model() == tmp_path / "user" / "models" / "clarityx_lite2.onnx"
    assert settings.models_dir() == tmp_path / "user" / "models"
    assert str(tmp_path / "user" / "models") in missing_model_message(settings.bundled_model())
    (tmp_path / "bundled_models").mkdir()
    (tmp_path / "bundled_models" / "clarityx_lite2.onnx").write_bytes(b"graph")
    assert settings.bundled_model() == tmp_path / "bundled_models" / "clarityx_lite2.onnx"


def test_only_this_projects_checkout_counts_as_one_not_site_packages(tmp_path, monkeypatch):
    """A wheel install: the folder above the package is site-packages, where another package's models/ must
    not take over the bundled-model lookup (issue 25, item 15)."""
    site = tmp_path / "site-packages"
    (site / "clarityx").mkdir(parents=True)
    (site / "models").mkdir()  # some other package's top-level models/
    assert settings.checkout_root(site / "clarityx") is None
    (site / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert settings.checkout_root(site / "clarityx") is None
    (site / "pyproject.toml").write_text("not [ toml")
    assert settings.checkout_root(site / "clarityx") is None
    clone = tmp_path / "clone"
    (clone / "clarityx").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "clarityx"\nversion = "0"\n')
    assert settings.checkout_root(clone / "clarityx") == clone
    # this test runs from a checkout: it is recognised as one
    assert settings.checkout_root(Path(settings.__file__).resolve().parents[1]) == Path(__file__).resolve().parents[1]

    monkeypatch.delenv("CLARITYX_MODEL", raising=False)
    monkeypatch.delenv("CLARITYX_MODELS_DIR", raising=False)
    monkeypatch.setattr(settings, "CHECKOUT_MODELS", None)  # what a wheel install computes
    monkeypatch.setattr(settings, "PACKAGED_MODELS", site / "clarityx" / "bundled_models")
    monkeypatch.setattr(settings, "user_data_dir", lambda: tmp_path / "user")
    assert settings.bundled_model() == tmp_path / "user" / "models" / "clarityx_lite2.onnx"
    assert settings.models_dir() == tmp_path / "user" / "models"


def test_retrained_models_go_to_the_user_data_folder_never_the_checkout(monkeypatch, tmp_path):
    """Issue 24, item 4: retrained models were installed into the checkout's models/ (untracked files)."""
    import json

    from app_pages.retrain import job
    from clarityx.screening.catalogue import available_models

    monkeypatch.delenv("CLARITYX_MODELS_DIR", raising=False)
    monkeypatch.delenv("CLARITYX_MODEL", raising=False)
    checkout = tmp_path / "checkout" / "models"
    checkout.mkdir(parents=True)
    monkeypatch.setattr(settings, "CHECKOUT_MODELS", checkout)
    monkeypatch.setattr(settings, "user_data_dir", lambda: tmp_path / "user")
    assert settings.models_dir() == tmp_path / "user" / "models"
    assert job().models_dir == tmp_path / "user" / "models"  # where the Retrain page installs
    # The app still offers both: the checkout's models and the person's own.
    card = json.loads((ROOT / "models" / "clarityx_lite2.card.json").read_text())
    (tmp_path / "user" / "models").mkdir(parents=True)
    for folder, name in ((checkout, "from_checkout"), (tmp_path / "user" / "models", "retrained")):
        (folder / f"{name}.onnx").write_bytes(b"graph")
        (folder / f"{name}.card.json").write_text(json.dumps({**card, "name": name}))
    assert settings.model_folders() == [checkout, tmp_path / "user" / "models"]
    assert {m.name: m.path for m in available_models()} == {
        "from_checkout": checkout / "from_checkout.onnx", "retrained": tmp_path / "user" / "models" / "retrained.onnx"}
