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
