"""``train.py --distribute``: clarityx.training.distribute on two logical CPU devices against one device.

The logical devices must be made before TensorFlow starts, so the run is a fresh process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clarityx.training import distribute as D

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from clarityx.training import distribute as D
from clarityx.training.steps import freeze_batchnorm
from tests.conftest import build_tiny_model, planted_dataset

x, y = planted_dataset(64, 64, seed=3)
keras.utils.set_random_seed(0)
w0 = build_tiny_model(64).get_weights()

def one_epoch(strategy, per_replica_batch, lr):
    s = D.scale(per_replica_batch, lr, strategy.num_replicas_in_sync)
    with strategy.scope():
        model = build_tiny_model(64)
        model.set_weights(w0)
        freeze_batchnorm(model)  # as train.py's phase 2: BatchNorm in inference mode
        for layer in model.get_layer("head").layers:  # dropout draws differ per replica: the same net without
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        model.compile(optimizer=keras.optimizers.SGD(s.lr, momentum=0.9), loss="sparse_categorical_crossentropy")
    ds = D.sharded_dataset(len(x), D.from_arrays(x, y), s.global_batch, seed=1,
                           class_weight={0: 1.0, 1: 2.0, 2: 1.0, 3: 0.5}, image_shape=x.shape[1:])
    history = model.fit(ds, epochs=1, steps_per_epoch=D.steps_per_epoch(len(x), s.global_batch), verbose=0)
    return s, history.history["loss"][0], model.get_weights()

s1, loss1, w1 = one_epoch(D.make_strategy("none"), 16, 0.02)
s2, loss2, w2 = one_epoch(D.make_strategy("mirrored", ["/cpu:0", "/cpu:1"]), 8, 0.01)
print(json.dumps({"replicas": [s1.replicas, s2.replicas], "global_batch": [s1.global_batch, s2.global_batch],
                  "lr": [s1.lr, s2.lr], "loss": [loss1, loss2],
                  "moved": max(float(np.abs(a - b).max()) for a, b in zip(w0, w1)),
                  "weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(w1, w2))}))
"""


def test_scaling_rule():
    s = D.scale(16, 1e-4, 4)
    assert (s.replicas, s.per_replica_batch, s.global_batch, s.lr) == (4, 16, 64, 4e-4)
    assert D.steps_per_epoch(100, 64) == 2 and D.steps_per_epoch(0, 64) == 1
    with pytest.raises(ValueError):
        D.make_strategy("several")


def test_only_the_chief_writes_where_asked(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert D.is_chief() and D.worker_path(tmp_path / "m.keras", tmp_path / "s") == str(tmp_path / "m.keras")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert not D.is_chief()
    assert D.worker_path(tmp_path / "m.keras", tmp_path / "s") == str(tmp_path / "s" / "worker1" / "m.keras")


@pytest.mark.slow
def test_one_epoch_on_two_logical_devices_matches_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["replicas"] == [1, 2] and r["global_batch"] == [16, 16] and r["lr"][0] == pytest.approx(r["lr"][1])
    assert r["moved"] > 1e-3  # it trained
    assert r["loss"][1] == pytest.approx(r["loss"][0], rel=1e-4, abs=1e-5)
    assert r["weight_diff"] < 1e-4
