#!/usr/bin/env python
"""Speed and memory of the bundled model on this machine, each beside a naive baseline.

    python benchmarks/speed.py [--model PATH] [--repeats 20] [--images DIR] [--skip-export]

Prints, as median [min-max] over repeats:
- cold start: new process -> TensorFlow imported, model loaded, first prediction
  (ClarityX's Classifier vs keras.saving.load_model + model.predict);
- single-image predict: compiled Classifier.predict vs model.predict(x);
- predict + Grad-CAM: one compiled pass for all classes vs model.predict + the keras-io
  recipe (a gradient model built per call, eager GradientTape);
- batch throughput of the CLI path on a folder (batched) vs model.predict per image;
- peak resident memory of each cold-start process;
- exported TFLite / ONNX models: size and single-image latency.

Whole process against whole process (what a person waits for): ``benchmarks/whole_process.py``.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

COLD_FAST = """
import time, json, resource, sys
t0 = time.perf_counter()
from clarityx.model.keras_engine import Classifier
from clarityx.screening.imageio import load_image
c = Classifier(sys.argv[1], warm_up=False)
t1 = time.perf_counter()
c.predict(c.prepare(load_image(sys.argv[2]))[None])
t2 = time.perf_counter()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load": t1 - t0, "first": t2 - t0, "rss_mb": rss_mb}))
"""

COLD_NAIVE = """
import time, json, resource, sys
t0 = time.perf_counter()
import keras
from clarityx.screening.imageio import load_image
from clarityx.screening.preprocess import prepare
m = keras.saving.load_model(sys.argv[1])
t1 = time.perf_counter()
m.predict(prepare(load_image(sys.argv[2]), m.input_shape[1])[None].astype("float32"), verbose=0)
t2 = time.perf_counter()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load": t1 - t0, "first": t2 - t0, "rss_mb": rss_mb}))
"""


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s: dict, unit: str = "ms", scale: float = 1000.0) -> str:
    return f"{s['median'] * scale:8.1f} {unit} [{s['min'] * scale:.1f}-{s['max'] * scale:.1f}]"


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def cold_start(script: str, model: Path, image: Path, repeats: int) -> tuple[dict, dict, float]:
    runs = []
    for _ in range(repeats):
        proc = subprocess.run([sys.executable, "-c", script, str(model), str(image)], capture_output=True,
                              text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return (stats([r["load"] for r in runs]), stats([r["first"] for r in runs]),
            statistics.median(r["rss_mb"] for r in runs))


def naive_gradcam(model, x):
    """The keras-io Grad-CAM recipe: gradient model built per call, eager tape."""
    import keras
    import tensorflow as tf

    backbone, head = model.get_layer("backbone"), model.get_layer("head")
    grad_model = keras.Model(head.input, head.output)
    preds = model.predict(x, verbose=0)
    with tf.GradientTape() as tape:
        fmap = backbone(x)
        tape.watch(fmap)
        out = grad_model(fmap)
        score = out[:, int(np.argmax(preds[0]))]
    grads = tape.gradient(score, fmap)
    weights = tf.reduce_mean(grads, axis=(0, 1, 2))
    heat = tf.nn.relu(tf.reduce_sum(fmap[0] * weights, axis=-1))
    return preds, (heat / (tf.reduce_max(heat) + 1e-8)).numpy()


def bench_images(folder: str | None, count: int) -> list[Path]:
    from clarityx.screening.imageio import find_images

    candidates = [Path(folder)] if folder else [ROOT.parent / "shared" / "data" / "eye_diseases"]
    for c in candidates:
        if c.exists():
            found = [p for p in find_images([c]) if not p.name.startswith("_")]
            if found:
                step = max(1, len(found) // count)
                return found[::step][:count]
    import skimage.data
    from PIL import Image

    tmp = Path(tempfile.mkdtemp())
    retina = skimage.data.retina()
    for i in range(count):
        Image.fromarray(np.roll(retina, i * 7, axis=1)).save(tmp / f"retina{i}.jpg", quality=90)
    return sorted(tmp.glob("*.jpg"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--images", help="folder of photos for throughput (default: shared data or retina copies)")
    ap.add_argument("--batch-images", type=int, default=64)
    ap.add_argument("--skip-export", action="store_true")
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from clarityx.screening.imageio import load_image
    from clarityx.model.keras_engine import Classifier
    from clarityx.screening.engine import default_model_path

    model_path = Path(args.model) if args.model else default_model_path()
    images = bench_images(args.images, args.batch_images)
    print(f"ClarityX speed benchmark — {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"model {model_path.name}; {len(images)} photos; repeats {args.repeats} (cold start {args.cold_repeats})\n")

    fast_load, fast_first, fast_rss = cold_start(COLD_FAST, model_path, images[0], args.cold_repeats)
    naive_load, naive_first, naive_rss = cold_start(COLD_NAIVE, model_path, images[0], args.cold_repeats)
    print("cold start, new process -> first prediction")
    print(f"  clarityx   {fmt(fast_first, 's', 1)}   (model loaded after {fast_load['median']:.1f} s)")
    print(f"  naive      {fmt(naive_first, 's', 1)}   ratio {naive_first['median'] / fast_first['median']:.2f}x")
    print(f"peak memory of those processes: clarityx {fast_rss:.0f} MB, naive {naive_rss:.0f} MB\n")

    classifier = Classifier(model_path)
    model = keras.saving.load_model(model_path, compile=False)
    x = classifier.prepare(load_image(images[0]))[None]
    xf = x.astype("float32")
    model.predict(xf, verbose=0)
    naive_gradcam(model, xf)

    fast = stats(timed(lambda: classifier.predict(x), args.repeats))
    naive = stats(timed(lambda: model.predict(xf, verbose=0), args.repeats))
    print("single-image predict")
    print(f"  compiled   {fmt(fast)}")
    print(f"  naive      {fmt(naive)}   ratio {naive['median'] / fast['median']:.1f}x")

    fast = stats(timed(lambda: classifier.explain(x[0]), args.repeats))
    naive = stats(timed(lambda: naive_gradcam(model, xf), args.repeats))
    print("predict + Grad-CAM (compiled: all classes; naive: top class only)")
    print(f"  compiled   {fmt(fast)}")
    print(f"  naive      {fmt(naive)}   ratio {naive['median'] / fast['median']:.1f}x")

    pixels = np.stack([classifier.prepare(load_image(p)) for p in images])

    def batched():
        for i in range(0, len(pixels), 16):
            classifier.predict(pixels[i:i + 16])

    def per_image():
        for p in pixels:
            model.predict(p[None].astype("float32"), verbose=0)

    reps = max(3, args.repeats // 5)
    fast = stats([len(pixels) / t for t in timed(batched, reps)])
    keras_batched = fast
    naive = stats([len(pixels) / t for t in timed(per_image, reps)])
    print(f"batch throughput on {len(pixels)} prepared photos (images/s, higher is better)")
    print(f"  batched    {fast['median']:8.1f} img/s [{fast['min']:.1f}-{fast['max']:.1f}]")
    print(f"  per image  {naive['median']:8.1f} img/s [{naive['min']:.1f}-{naive['max']:.1f}]   "
          f"ratio {fast['median'] / naive['median']:.1f}x")

    folder = Path(tempfile.mkdtemp())
    for p in images:
        (folder / p.name).symlink_to(p.resolve())
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "clarityx", "predict", str(folder), "--json", "--model",
                           str(model_path)], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    ok = sum('"status": "ok"' in line for line in proc.stdout.splitlines())
    print(f"  CLI end to end (decode, gate, predict; process start included): {len(images)} photos in "
          f"{wall:.1f} s, {ok} accepted\n")

    if args.skip_export:
        return
    from clarityx.loader import load_classifier
    from clarityx.model.export import export

    out_dir = Path(tempfile.mkdtemp())
    print("exported models (single image; the ONNX graph also returns every class's Grad-CAM)")
    for fmt_name, quant in [("tflite", None), ("tflite", "float16"), ("tflite", "int8"), ("onnx", None)]:
        path = export(model_path, fmt_name, quant, out_dir / f"m.{quant or 'fp32'}.{fmt_name}")
        exported = load_classifier(path)
        exported.predict(x)
        s = stats(timed(lambda: exported.predict(x), args.repeats))
        diff = max(abs(a.probabilities - b.probabilities).max() for a, b in
                   zip(classifier.predict(pixels[:16]), exported.predict(pixels[:16])))
        print(f"  {fmt_name:6s} {quant or 'float32':8s} {path.stat().st_size / 2**20:5.1f} MB  {fmt(s)}  "
              f"max |Δp| vs Keras on 16 photos {diff:.6f}")
        if fmt_name == "onnx":
            e = stats(timed(lambda: exported.explain(x[0]), args.repeats))
            print(f"         predict + Grad-CAM (all classes) {fmt(e)}")

            def onnx_batched():
                for i in range(0, len(pixels), 16):
                    exported.predict(pixels[i:i + 16])
            b = stats([len(pixels) / t for t in timed(onnx_batched, reps)])
            print(f"         batched throughput {b['median']:.1f} img/s [{b['min']:.1f}-{b['max']:.1f}] "
                  f"(Keras compiled: {keras_batched['median']:.1f})")

if __name__ == "__main__":
    main()
