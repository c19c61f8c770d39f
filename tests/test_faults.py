"""Faults: a missing, damaged or mismatched model, a full disk, an interrupted training run.

Each must end in a clear message and lose nothing that was already saved.
"""
import errno
import json
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from clarityx.loader import load_classifier
from clarityx.screening.errors import ModelNotInstalled, ModelUnreadable
from clarityx.screening.files import WriteFailed, atomic_path
from tests.conftest import TINY_SIZE, synthetic_fundus


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    """A private copy of the tiny model and its card, to damage."""
    for f in tiny_model.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / tiny_model.name


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_missing_model(tmp_path):
    with pytest.raises(ModelNotInstalled, match="No trained model"):
        load_classifier(tmp_path / "absent.keras")


@pytest.mark.parametrize("damage", ["truncated model", "garbage model", "card not JSON", "card wrong classes",
                                    "card wrong size", "card wrong type"])
def test_damaged_or_mismatched_model_is_refused_clearly(model_copy, damage):
    card = model_copy.with_name(model_copy.stem + ".card.json")
    if damage == "truncated model":
        model_copy.write_bytes(model_copy.read_bytes()[:5000])
    elif damage == "garbage model":
        model_copy.write_bytes(b"not a model" * 100)
    elif damage == "card not JSON":
        card.write_text("{ half a card")
    else:
        data = json.loads(card.read_text())
        if damage == "card wrong classes":
            data["classes"] = data["classes"][:-1]
        elif damage == "card wrong type":
            data["temperature"] = "warm"
        else:
            data["input_size"] = data["input_size"] * 2
        card.write_text(json.dumps(data))
    with pytest.raises(ModelUnreadable) as info:
        load_classifier(model_copy)
    assert model_copy.name in str(info.value) and "Reinstall" in str(info.value)
    if damage == "card wrong type":  # says which field, and what it must be
        assert "'temperature' must be a positive number, not text" in str(info.value)


def test_damaged_onnx_graph_is_refused_or_skipped(model_copy):
    from clarityx.screening.engine import onnx_path

    onnx_path(model_copy).write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelUnreadable, match="not a ClarityX ONNX graph"):
        load_classifier(onnx_path(model_copy))
    with pytest.warns(UserWarning, match="cannot be read"):  # beside a good .keras: TensorFlow takes over
        assert load_classifier(model_copy).engine == "keras"


def test_cli_reports_a_damaged_model_without_a_traceback(model_copy, tmp_path, capsys):
    from clarityx.cli import main

    model_copy.write_bytes(b"\0" * 1000)
    Image.fromarray(synthetic_fundus(200, seed=3)).save(tmp_path / "eye.png")
    assert main(["predict", str(tmp_path / "eye.png"), "--model", str(model_copy)]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err


def test_atomic_write_keeps_the_old_file_when_the_disk_fills(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("saved before")
    with pytest.raises(WriteFailed, match="disk is full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            disk_full()
    assert target.read_text() == "saved before"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]  # no temporary file left behind


def test_heat_maps_on_a_full_disk_stop_cleanly_and_keep_what_was_written(classifier, tmp_path, capsys,
                                                                          monkeypatch):
    from clarityx.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_fundus(240, seed=20 + i)).save(photos / f"e{i}.png")
    saved = []
    real_save = Image.Image.save

    def filling_disk(self, fp, *args, **kwargs):
        if saved:  # the first heat map fits, then the disk is full
            with open(fp, "wb") as f:
                f.write(b"\x89PNG partial")
            disk_full()
        saved.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", filling_disk)
    heat = tmp_path / "heat"
    assert main(["predict", str(photos), "--json", "--heatmap-dir", str(heat), "--model",
                 str(classifier.path)]) == 1
    out, err = capsys.readouterr()
    assert "disk is full" in err and "Traceback" not in err
    assert len(out.splitlines()) >= 1  # results already printed stay printed
    files = sorted(heat.iterdir())
    assert len(files) == 1 and files[0].name.startswith("e0.") and files[0].name.endswith(".gradcam.png")  # whole
    monkeypatch.undo()
    assert Image.open(files[0]).size[0] > 0


def test_export_on_a_full_disk_keeps_the_previous_graph(model_copy, monkeypatch):
    import onnx

    from clarityx.model.export import export
    from clarityx.screening.engine import onnx_path

    export(model_copy, "onnx")
    before = onnx_path(model_copy).read_bytes()
    monkeypatch.setattr(onnx, "save", disk_full)
    with pytest.raises(WriteFailed, match="disk is full"):
        export(model_copy, "onnx")
    assert onnx_path(model_copy).read_bytes() == before
    assert sorted(p.name for p in model_copy.parent.iterdir() if p.name.startswith(".")) == []


def tiny_training(tmp_path, *extra):
    """Arguments and random data for train.fine_tune on the tiny model (its four classes)."""
    import train
    from tests.conftest import build_tiny_model

    args = train.parse_args(["--data", "unused", "--output", str(tmp_path / "m.keras"), "--cache-dir",
                             str(tmp_path / "cache"), "--epochs", "3", "--batch-size", "8", "--lr", "1e-3",
                             "--patience", "5", *extra])
    rng = np.random.default_rng(0)
    x = {k: rng.integers(0, 255, (n, TINY_SIZE, TINY_SIZE, 3), dtype=np.uint8) for k, n in
         (("train", 32), ("validation", 16))}
    y = {k: rng.integers(0, 4, len(v)).astype(np.int32) for k, v in x.items()}
    return train, build_tiny_model(), x, y, args


def test_training_interrupted_then_resumed_continues_the_schedule(tmp_path):
    train, model, x, y, args = tiny_training(tmp_path, "--stop-after", "1")
    weights = {i: 1.0 for i in range(4)}
    epochs, _ = train.fine_tune(model, x, y, args, weights)       # "interrupted" after epoch 1 of 3
    assert epochs == 1
    last, best, state = train.checkpoint_paths(args)
    saved = json.loads(state.read_text())
    assert saved["epoch"] == 1 and np.isfinite(saved["best_val_loss"]) and best.is_file()

    train2, model2, *_ = tiny_training(tmp_path)
    args2 = train2.parse_args(["--data", "unused", "--output", args.output, "--cache-dir", args.cache_dir,
                               "--epochs", "3", "--batch-size", "8", "--lr", "1e-3", "--patience", "5",
                               "--resume"])
    epochs, _ = train2.fine_tune(model2, x, y, args2, weights)
    steps_per_epoch = int(np.ceil(len(x["train"]) / 8))
    assert epochs == 3
    # The optimizer's step count (and so the learning-rate schedule) carried over from epoch 1.
    resumed = json.loads(state.read_text())
    assert saved["optimizer_step"] == steps_per_epoch and resumed["optimizer_step"] == 3 * steps_per_epoch
    assert resumed["best_val_loss"] <= saved["best_val_loss"]  # best-so-far was not forgotten


def test_a_full_disk_during_training_keeps_the_last_whole_checkpoint(tmp_path, monkeypatch):
    import keras

    train, model, x, y, args = tiny_training(tmp_path)
    real = keras.Model.save_weights
    calls = []

    def fills_up(self, path, *a, **k):
        calls.append(path)
        if len(calls) > 2:  # epoch 1 writes last + best; then the disk is full
            with open(path, "wb") as f:
                f.write(b"partial")
            disk_full()
        return real(self, path, *a, **k)

    monkeypatch.setattr(keras.Model, "save_weights", fills_up)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(WriteFailed, match="disk is full"):
            train.fine_tune(model, x, y, args, {i: 1.0 for i in range(4)})
    monkeypatch.undo()
    last, best, state = train.checkpoint_paths(args)
    assert json.loads(state.read_text())["epoch"] == 1
    fresh = tiny_training(tmp_path)[1]
    fresh.load_weights(last)  # whole and loadable
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.weights.h5", "last.weights.h5", "state.json"]
