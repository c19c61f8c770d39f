"""train.py end to end on a tiny generated dataset: a loadable model and card the CLI can use."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import synthetic_fundus

ROOT = Path(__file__).resolve().parent.parent


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
           "--weights", "none", "--img-size", "64", "--head-epochs", "2", "--epochs", "1", "--batch-size", "8",
           "--output", str(out), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    card = json.loads(out.with_name("tiny.card.json").read_text())
    assert card["classes"] == ["normal", "cataract", "diabetic_retinopathy", "glaucoma"]
    assert card["input_size"] == 64 and card["temperature"] > 0
    assert card["audit"]["patients_in_two_splits"] == 0
    assert set(card["data"]["counts"]) == {"train", "validation", "calibration", "test"}
    assert card["calibration"]["fitted_on"].startswith("calibration") and len(card["log_prior_correction"]) == 4
    test = card["metrics"]["test"]
    assert test["n"] == len(card["split"]["test_files"]) > 0
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
