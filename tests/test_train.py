"""train.py end to end on a tiny generated dataset: a loadable model and card the CLI can use."""
import csv
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from PIL import Image

from clarityx.screening.card import SCHEMA_VERSION
from clarityx.screening.limits import GateSettings
from tests.conftest import synthetic_fundus
from tests.test_card import strings

ROOT = Path(__file__).resolve().parent.parent


def split_test_rows(model: Path) -> list[dict]:
    with open(model.with_name(model.stem + ".split.csv"), newline="") as f:
        return [row for row in csv.DictReader(f) if row["split"] == "test"]


@pytest.fixture
def tiny_dataset(tmp_path):
    root = tmp_path / "data"
    for k, cls in enumerate(["normal", "cataract", "diabetic_retinopathy", "glaucoma"]):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(synthetic_fundus(160, seed=1000 * k + i)).save(root / cls / f"{i}.png")
    return root


def test_train_end_to_end_then_cli(tiny_dataset, tmp_path):
    out = tmp_path / "models" / "tiny.keras"
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(tiny_dataset), "--backbone", "efficientnet_lite0",
           "--weights", "lite0-imagenet", "--img-size", "64", "--head-epochs", "2", "--epochs", "1",
           "--batch-size", "8",
           "--output", str(out), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    card = json.loads(out.with_name("tiny.card.json").read_text())
    assert card["classes"] == ["normal", "cataract", "diabetic_retinopathy", "glaucoma"]
    assert card["input_size"] == 64 and card["temperature"] > 0
    assert card["audit"]["patients_in_two_splits"] == 0
    assert set(card["data"]["counts"]) == {"train", "validation", "calibration", "test"}
    assert card["calibration"]["fitted_on"].startswith("calibration") and len(card["log_prior_correction"]) == 4
    # A card says what is true of its own data: not the public collections' licence, no camera probe it never ran.
    assert "your own dataset" in card["intended_use"] and "at home" not in card["intended_use"]
    assert card["data"]["licence"].startswith("The licence of the dataset")
    assert not any("camera probe" in x for x in card["limitations"])
    assert out.with_name("tiny.onnx").is_file()  # the app's engine, exported by every run
    test = card["metrics"]["test"]
    assert test["n"] == len(split_test_rows(out)) > 0  # the test photos: in the split file, not the card
    assert card["schema_version"] == SCHEMA_VERSION and "test_files" not in card["split"]
    assert not [s for s in strings(card) if os.path.isabs(s)]  # no build paths (the data was given absolute)
    assert set(card["gate"]["settings"]) == {f.name for f in fields(GateSettings)}
    assert card["gate"]["settings"]["max_ood_distance"] > 0
    assert len(test["confusion_matrix"]) == 4 and 0 <= test["macro_f1"] <= 1
    assert out.with_name("tiny.split.csv").is_file() and out.with_name("tiny.ood.npz").is_file()
    assert out.with_name("tiny.card.md").read_text().startswith("# Model card")
    assert out.stat().st_size < 22e6  # no optimizer state (Lite0 + head weights alone: ~19 MB)

    proc = subprocess.run([sys.executable, "-m", "clarityx", "predict", str(tiny_dataset / "glaucoma"),
                           "--model", str(out), "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == 10 and all(r["status"] in ("ok", "rejected") for r in records)

    html = tmp_path / "cm.html"
    proc = subprocess.run([sys.executable, "-m", "clarityx", "evaluate", str(tiny_dataset), "--model", str(out),
                           "--json", "--confusion-html", str(html)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["n"] == test["n"]
    assert report["accuracy"] == pytest.approx(test["accuracy"], abs=1e-6)  # reproduces the card
    assert report["confusion_matrix"] == test["confusion_matrix"]
    assert "plotly" in html.read_text()[:5000].lower()


def test_missing_imagenet_weights_fail_clearly(tiny_dataset, tmp_path):
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(tiny_dataset), "--backbone", "efficientnet_b0",
           "--weights", str(tmp_path / "efficientnetb0_notop.h5"), "--img-size", "64", "--epochs", "0",
           "--output", str(tmp_path / "m.keras"), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2
    assert "weights file not found" in proc.stderr


def test_a_split_file_from_other_data_is_not_reused_silently(tiny_dataset, tmp_path):
    import train

    args = train.parse_args(["--data", str(tiny_dataset), "--output", str(tmp_path / "m.keras")])
    classes, *_ = train.prepare_data(args, None)
    assert classes == ["normal", "cataract", "diabetic_retinopathy", "glaucoma"]
    assert (tmp_path / "m.split.csv").is_file()
    (tiny_dataset / "glaucoma" / "3.png").rename(tiny_dataset / "normal" / "g3.png")  # relabelled since
    with pytest.raises(SystemExit, match="made from other data or options"):
        train.prepare_data(args, None)


def test_a_reused_split_refuses_photos_added_since(tiny_dataset, tmp_path):
    import train

    args = train.parse_args(["--data", str(tiny_dataset), "--output", str(tmp_path / "m.keras")])
    train.prepare_data(args, None)
    Image.fromarray(synthetic_fundus(160, seed=4242)).save(tiny_dataset / "normal" / "new.png")
    with pytest.raises(SystemExit, match="1 photos are in no split"):
        train.prepare_data(args, None)


def aptos_download(root: Path, per_grade: int = 12) -> Path:
    """The APTOS 2019 competition layout: train.csv (id_code, diagnosis 0-4) + train_images/."""
    (root / "train_images").mkdir(parents=True)
    rows = ["id_code,diagnosis"]
    for grade in range(5):
        for i in range(per_grade):
            code = f"{grade}{i:03d}abc"
            Image.fromarray(synthetic_fundus(160, seed=100 * grade + i)).save(root / "train_images" / f"{code}.png")
            rows.append(f"{code},{grade}")
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    return root


def g1020_download(root: Path, per_label: int = 16) -> Path:
    """The G1020 layout: G1020.csv (imageID, binaryLabels 1 = glaucoma) + Images/."""
    (root / "G1020" / "Images").mkdir(parents=True)
    rows = ["imageID,binaryLabels"]
    for label in (0, 1):
        for i in range(per_label):
            name = f"image_{label}{i:02d}.jpg"
            Image.fromarray(synthetic_fundus(160, seed=500 + 50 * label + i)).save(root / "G1020" / "Images" / name)
            rows.append(f"{name},{label}")
    (root / "G1020" / "G1020.csv").write_text("\n".join(rows) + "\n")
    return root


def train_tiny(data: Path, out: Path, *extra: str) -> dict:
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", str(data), "--backbone", "efficientnet_lite0",
           "--weights", "lite0-imagenet", "--img-size", "64", "--head-epochs", "2", "--epochs", "0",
           "--batch-size", "8",
           "--val-frac", "0.2", "--test-frac", "0.2", "--output", str(out), "--cache-dir", str(out.parent / "cache"),
           *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.with_name(out.stem + ".card.json").read_text())


def test_a_dr_grade_model_from_an_aptos_download_answers_with_a_grade(tmp_path):
    from clarityx.screening.grades import GRADE_CLASSES, grade_of

    data = aptos_download(tmp_path / "aptos")
    out = tmp_path / "models" / "dr_grade.keras"
    card = train_tiny(data, out, "--task", "dr-grade")
    assert card["classes"] == list(GRADE_CLASSES) and card["data"]["task"] == "dr-grade"
    assert "grades" in card["intended_use"] and "grade 0-4" in " ".join(card["data"]["defects_handled"])
    assert any("Grades diabetic retinopathy only" in x for x in card["limitations"])
    test = card["metrics"]["test"]
    assert -1 <= test["quadratic_weighted_kappa"] <= 1 and len(test["intervals"]["quadratic_weighted_kappa"]) == 2
    assert card["dr_threshold"] is not None and test["referable_dr"]["definition"].startswith("grade >= 2")
    assert {int(r["grade"]) for r in split_test_rows(out)} <= set(range(5))

    proc = subprocess.run([sys.executable, "-m", "clarityx", "predict", str(data / "train_images"), "--model", str(out),
                           "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ok = [r for r in map(json.loads, proc.stdout.splitlines()) if r["status"] == "ok"]
    assert ok and all(r["grade"] == grade_of(r["top"]) and 0 <= r["grade"] <= 4 for r in ok)

    proc = subprocess.run([sys.executable, "-m", "clarityx", "evaluate", str(data), "--model", str(out), "--json"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["quadratic_weighted_kappa"] == pytest.approx(test["quadratic_weighted_kappa"])


def test_a_glaucoma_model_from_a_g1020_download(tmp_path):
    out = tmp_path / "models" / "glaucoma.keras"
    card = train_tiny(g1020_download(tmp_path / "g1020"), out)
    assert card["classes"] == ["normal", "glaucoma"] and card["dr_threshold"] is None
    assert any(x.startswith("Knows 2 classes (normal, glaucoma)") for x in card["limitations"])
    assert "diabetic" not in card["intended_use"] and card["metrics"]["test"]["n"] > 0


def test_fine_tuning_can_start_from_a_trained_model_of_the_same_shape(tmp_path):
    data = g1020_download(tmp_path / "g1020")
    first = tmp_path / "models" / "glaucoma.keras"
    train_tiny(data, first)
    card = train_tiny(data, tmp_path / "models" / "tuned.keras", "--init", str(first), "--epochs", "1")
    assert card["initialisation"].endswith("then glaucoma.keras") and card["training"]["phase2_epochs"] == 1

    other = tmp_path / "aptos_model.keras"  # five outputs: cannot start a two-class model
    train_tiny(aptos_download(tmp_path / "aptos", per_grade=6), other, "--task", "dr-grade", "--head-epochs", "1")
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data), "--weights", "lite0-imagenet",
                           "--backbone", "efficientnet_lite0", "--img-size", "64", "--init", str(other),
                           "--output", str(tmp_path / "bad.keras"), "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 2 and "cannot start from" in proc.stderr
