#!/usr/bin/env python
"""What a person waits for, whole process against whole process, in one run on one machine.

    python benchmarks/whole_process.py [--photos 32] [--repeats 3] [--app-repeats 3] [--no-write]

1. CLI: a new process → results and Grad-CAM heat maps (PNG) for N photos.
   - keras-io way: TensorFlow, ``keras.saving.load_model``, then per photo ``model.predict`` and the
     keras-io Grad-CAM recipe (gradient model, eager ``GradientTape``, top class), overlay saved;
   - ``clarityx predict DIR --json --heatmap-dir H`` (the ONNX engine when the bundled graph is in sync).
   Wall time and peak resident memory of each process; the ratio of medians.
2. App: a fresh ``streamlit run app.py`` → page open in headless Chromium → a photo uploaded the moment
   the uploader shows → ranked chart on screen (``benchmarks/app_start.py``).

The figures go into ``benchmarks/RESULTS.md`` (between markers, replaced on each run) unless ``--no-write``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- whole_process: begin -->", "<!-- whole_process: end -->"

KERAS_IO = """
import json, os, resource, sys
from pathlib import Path
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np, tensorflow as tf
from PIL import Image
from clarityx.screening.imageio import find_images, load_image
from clarityx.screening.preprocess import prepare
from clarityx.screening.heatmap import overlay
model = keras.saving.load_model(sys.argv[1], compile=False)
size = model.input_shape[1]
backbone, head = model.get_layer("backbone"), model.get_layer("head")
out = Path(sys.argv[3]); out.mkdir(parents=True, exist_ok=True)
for path in find_images([sys.argv[2]]):
    x = prepare(load_image(path), size)[None].astype("float32")  # the card's contrast is ignored here
    preds = model.predict(x, verbose=0)
    grad_model = keras.Model(head.input, head.output)
    with tf.GradientTape() as tape:
        fmap = backbone(x)
        tape.watch(fmap)
        score = grad_model(fmap)[:, int(np.argmax(preds[0]))]
    grads = tape.gradient(score, fmap)
    heat = tf.nn.relu(tf.reduce_sum(fmap[0] * tf.reduce_mean(grads, axis=(0, 1, 2)), axis=-1))
    heat = (heat / (tf.reduce_max(heat) + 1e-8)).numpy()
    Image.fromarray(overlay(x[0].astype("uint8"), heat)).save(out / (path.stem + ".png"))
    print(json.dumps({"path": str(path), "probabilities": preds[0].tolist()}))
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""

CLARITYX = """
import atexit, json, resource, runpy, sys
atexit.register(lambda: print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}),
                              file=sys.stderr))
sys.argv = ["clarityx", "predict", sys.argv[2], "--json", "--heatmap-dir", sys.argv[3], "--model", sys.argv[1]]
runpy.run_module("clarityx", run_name="__main__")
"""


def photos(count: int) -> Path:
    """A folder of ``count`` fundus photos (shared data, else copies of scikit-image's retina)."""
    folder = Path(tempfile.mkdtemp(prefix="clarityx-bench-"))
    shared = ROOT.parent / "shared" / "data" / "odir5k" / "preprocessed_images"
    found = sorted(shared.glob("*.jpg"))[:: 97][:count] if shared.is_dir() else []
    if len(found) == count:
        for p in found:
            (folder / p.name).symlink_to(p.resolve())
    else:
        import numpy as np
        import skimage.data
        from PIL import Image

        for i in range(count):
            Image.fromarray(np.roll(skimage.data.retina(), 7 * i, axis=1)).save(folder / f"retina{i}.jpg")
    return folder


def one_process(script: str, model: Path, folder: Path) -> dict:
    heat = Path(tempfile.mkdtemp(prefix="clarityx-heat-"))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, str(model), str(folder), str(heat)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    rss = json.loads(proc.stderr.strip().splitlines()[-1])["rss_mb"]
    return {"wall_s": wall, "rss_mb": rss, "heat_maps": len(list(heat.glob("*.png"))),
            "results": sum(1 for line in proc.stdout.splitlines() if line.startswith("{"))}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def spread(runs: list[dict], key: str, unit: str) -> str:
    values = [r[key] for r in runs]
    return f"{statistics.median(values):.1f} {unit} [{min(values):.1f}–{max(values):.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "clarityx_lite2.keras"))
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--app-repeats", type=int, default=3, help="0 skips the browser measurement")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()

    model, folder = Path(args.model), photos(args.photos)
    runs: dict[str, list[dict]] = {"keras-io": [], "clarityx": []}
    for _ in range(args.repeats):  # alternate, so drifting machine load hits both alike
        runs["keras-io"].append(one_process(KERAS_IO, model, folder))
        runs["clarityx"].append(one_process(CLARITYX, model, folder))
    ratio = median(runs["keras-io"], "wall_s") / median(runs["clarityx"], "wall_s")
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
             f"{os.cpu_count()} CPUs, by `python benchmarks/whole_process.py` (model {model.name}, "
             f"{args.photos} photos, {args.repeats} alternating repeats; median [min–max]).", "",
             "| whole process: new process → results + heat maps | wall time | peak memory | heat maps |",
             "|---|---|---|---|"]
    for name, rs in runs.items():
        lines.append(f"| {name} | {spread(rs, 'wall_s', 's')} | {spread(rs, 'rss_mb', 'MB')} | "
                     f"{rs[0]['heat_maps']} of {args.photos} |")
    lines += ["", f"**CLI speed-up, whole process against whole process: {ratio:.1f}×** "
              "(goal ≥ 6×; peak memory goal ≤ 400 MB)."]
    if args.app_repeats:
        from benchmarks.app_start import one_run

        photo = next(folder.iterdir())
        app = [one_run(photo, str(model)) for _ in range(args.app_repeats)]
        lines += ["", "| app, fresh `streamlit run` in headless Chromium | median [min–max] |", "|---|---|"]
        for key, label in [("interactive", "page interactive (s from start)"),
                           ("result_after_upload", "**first result after the upload** (s)"),
                           ("first_result", "first result (s from start)")]:
            lines.append(f"| {label} | {spread(app, key, 's')} |")
        lines += ["", "Goal: first result ≤ 3 s after the upload (≤ 1.5 s stretch)."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        block = f"{BEGIN}\n## Whole process: the ONNX screening runtime against the keras-io way\n\n{text}\n{END}"
        if BEGIN in current:
            current = current[:current.index(BEGIN)] + block + current[current.index(END) + len(END):]
        else:
            head, _, rest = current.partition("\n")
            current = f"{head}\n\n{block}\n{rest}"
        RESULTS.write_text(current)


if __name__ == "__main__":
    main()
