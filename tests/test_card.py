"""The model card has a schema and a version, checked on load; older cards are brought up to date; each figure
is stored once; the gate takes a model's recorded limits (issue 17: one place for each setting)."""
import json
import os
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest

from clarityx.screening.card import SCHEMA_VERSION, ModelCard, card_path, migrate, validate
from clarityx.screening.errors import CardInvalid, ModelUnreadable
from clarityx.screening.limits import DEFAULT_GATE, GateSettings

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "clarityx_lite2.card.json"


def minimal(**changes) -> dict:
    return {"schema_version": SCHEMA_VERSION, "name": "m", "classes": ["normal", "glaucoma"], "input_size": 64,
            "backbone": "tiny", "architecture": "a CNN", "initialisation": "random", **changes}


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_the_bundled_card_is_in_the_current_schema_with_each_figure_once_and_no_build_paths():
    raw = json.loads(BUNDLED.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and migrate(raw) == raw
    validate(raw)
    assert not {"temperature", "log_prior_correction", "dr_referable_threshold"} & set(raw["calibration"])
    assert not {"ood_threshold", "ood_threshold_fitted_on"} & set(raw["gate"]["measured"])
    assert "max_ood_distance" not in raw["gate"] and "keras" not in raw["training"]
    assert not any(k.startswith("test_") for k in raw["split"])  # the test photos are in the split file
    assert set(raw["gate"]["settings"]) == {f.name for f in fields(GateSettings)}
    text = BUNDLED.read_text()
    assert "/work" not in text and "/tmp" not in text and "/home" not in text
    assert not [s for s in strings(raw) if os.path.isabs(s)]
    card = ModelCard.load(BUNDLED)
    assert card.gate_settings.max_ood_distance == raw["gate"]["settings"]["max_ood_distance"] > 0


def v1_card(tmp_path: Path) -> Path:
    """A card as train.py wrote them before the schema (schema 1), with its split file beside it."""
    (tmp_path / "m.split.csv").write_text("path,label,split,group,source,grade,conditions\n"
                                          "../data/odir/a.jpg,normal,test,1,odir,0,normal\n"
                                          "../data/odir/b.jpg,glaucoma,train,2,odir,,glaucoma\n")
    old = {k: v for k, v in minimal().items() if k != "schema_version"}
    old.update(temperature=1.7, log_prior_correction=[0.1, -0.1], dr_threshold=None,
               calibration={"temperature": 1.7, "log_prior_correction": [0.1, -0.1], "dr_referable_threshold": None,
                            "class_weight": "sqrt"},
               split={"method": "m", "seed": 0, "test_files": ["odir/a.jpg"], "test_labels": ["normal"],
                      "test_sources": ["odir"], "test_grades": [0], "test_groups": ["1"],
                      "test_conditions": ["normal"]},
               gate={"max_ood_distance": 42.0, "max_ood_distance_fitted_on": "train.py's views",
                     "measured": {"ood_threshold": 42.0, "ood_threshold_fitted_on": "validation 99th percentile",
                                  "natural_photos_accepted": "0/21 = 0.0%"}},
               training={"keras": "3.15.1", "library_versions": {"keras": "3.15.1"}, "finished": "today"})
    path = tmp_path / "models" / "m.card.json"
    path.parent.mkdir()
    (tmp_path / "m.split.csv").rename(path.with_name("m.split.csv"))
    path.write_text(json.dumps(old))
    return path


def test_a_card_in_the_old_layout_loads_and_is_saved_in_the_new_one(tmp_path):
    path = v1_card(tmp_path)
    card = ModelCard.load(path)
    assert card.temperature == 1.7 and card.log_prior_correction == [0.1, -0.1]
    assert card.calibration == {"class_weight": "sqrt"}
    assert card.gate_settings.max_ood_distance == 42.0
    assert card.gate["max_ood_distance_fitted_on"] == "validation 99th percentile"  # what the limit came from
    assert card.gate["measured"] == {"natural_photos_accepted": "0/21 = 0.0%"}
    assert card.split == {"method": "m", "seed": 0, "data_root": "../data"}
    assert card.training == {"library_versions": {"keras": "3.15.1"}, "finished": "today"}
    card.save(path)
    saved = json.loads(path.read_text())
    assert saved["schema_version"] == SCHEMA_VERSION and migrate(saved) == saved
    assert ModelCard.load(path) == card


@pytest.mark.parametrize("change, says", [
    ({"classes": None}, "lacks the field 'classes'"),
    ({"temperature": "warm"}, "'temperature' must be a positive number, not text (\"warm\")"),
    ({"temperature": 0}, "'temperature' must be a positive number"),
    ({"input_size": 64.5}, "'input_size' must be a whole number of pixels"),
    ({"classes": "normal,glaucoma"}, "'classes' must be a non-empty list of class names"),
    ({"contrast": "sharp"}, "'contrast' must be one of 'none', 'ben_graham', 'clahe'"),
    ({"temprature": 1.5}, "unknown field 'temprature' (a misspelt name?)"),
    ({"schema_version": 99}, "written by a newer ClarityX (card schema 99"),
    ({"schema_version": "2"}, "'schema_version' must be a whole number"),
    ({"log_prior_correction": [0.1]}, "'log_prior_correction' has 1 numbers for 2 classes"),
    ({"gate": {"settings": {"min_side": "big"}}}, "'gate.settings.min_side' must be a number"),
    ({"gate": {"settings": {"min_sides": 100}}}, "unknown setting 'min_sides'"),
    ({"dr_threshold": True}, "'dr_threshold' must be a number or null, not true/false"),
])
def test_a_damaged_or_hand_edited_card_is_refused_saying_which_field_and_how(tmp_path, change, says):
    data = {k: v for k, v in {**minimal(), **change}.items() if v is not None}
    path = tmp_path / "m.card.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CardInvalid) as info:
        ModelCard.load(path)
    assert says in str(info.value) and str(info.value).startswith("m.card.json")
    assert isinstance(info.value, ModelUnreadable) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", ["{ half a card", "[1, 2]", "\udcff"])
def test_a_card_that_is_not_a_json_object_is_refused(tmp_path, text):
    path = tmp_path / "m.card.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(CardInvalid, match="m.card.json"):
        ModelCard.load(path)


def test_a_card_that_would_not_load_again_is_never_written(tmp_path):
    card = ModelCard.from_dict(minimal())
    card.temperature = -1.0
    with pytest.raises(CardInvalid, match="temperature"):
        card.save(tmp_path / "m.card.json")
    assert not (tmp_path / "m.card.json").exists()


def test_the_model_list_skips_a_damaged_card(tmp_path):
    from clarityx.screening.catalogue import available_models

    for name, card in (("good", minimal(name="good")), ("bad", minimal(name="bad", temperature="warm"))):
        (tmp_path / f"{name}.onnx").write_bytes(b"graph")
        card_path(tmp_path / f"{name}.onnx").write_text(json.dumps(card))
    assert [m.name for m in available_models(tmp_path) if m.path.parent == tmp_path] == ["good"]


def test_the_gate_takes_the_limits_a_models_card_records(retina_png):
    from clarityx.screening.gate import check_image
    from clarityx.screening.imageio import load_image
    from clarityx.screening.pipeline import analyse

    assert ModelCard.from_dict(minimal()).gate_settings == DEFAULT_GATE  # none recorded: the defaults
    card = ModelCard.from_dict(minimal(gate={"settings": {"min_brightness": 250.0, "min_side": 5000}}))
    assert card.gate_settings.min_brightness == 250.0 and card.gate_settings.min_sharpness == DEFAULT_GATE.min_sharpness
    rgb = load_image(retina_png)
    assert check_image(rgb) is None and check_image(rgb, card.gate_settings).reason == "too_dark"
    result = analyse(SimpleNamespace(card=card), retina_png)  # refused before the model: none needed
    assert result.status == "rejected" and result.reason == "ImageTooSmall" and "5000 pixels" in result.message


def test_the_answer_takes_the_cards_uncertainty_and_weak_spot_limits():
    from app_pages.guidance import guidance, weak_spot_notes

    assert "unsure" not in guidance("glaucoma", 0.55)[0]
    assert "unsure" in guidance("glaucoma", 0.55, settings=GateSettings(uncertain=0.6))[0]
    metrics = {"test": {"per_class": {"glaucoma": {"recall": 0.65}}}}
    assert weak_spot_notes(metrics) == [] and len(weak_spot_notes(metrics, below=0.7)) == 1
