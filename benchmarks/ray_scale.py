#!/usr/bin/env python
"""Photos per second: the single-process engine against Ray with 1 and 2 model actors, same photos.

    python benchmarks/ray_scale.py [--photos 1000] [--no-write]

Each engine runs as the command a person types, with heat maps, in a new process:
``clarityx predict PHOTOS... --json --heatmap-dir H`` and the same with ``--engine ray --num-actors K`` (a local
Ray started for the run, on every core of this machine). The photos: the outside sets (``external/``) and the
bundled model's held-out test split under ``../shared/data``, spread evenly over them.

Reported per engine: the whole command's wall time (process and Ray start included), photos/s over it, and the
steady rate, the rows after the first batch over the time from the first row to the last, which leaves out the
start-up; the scaling efficiency is rate(2 actors) / (2 x rate(1 actor)). The rows of every engine must agree
(same path, status, top).
Figures go into ``benchmarks/RESULTS.md`` between markers unless ``--no-write``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- ray_scale: begin -->", "<!-- ray_scale: end -->"
CLARITYX = [sys.executable, "-m", "clarityx"]


def photos(n: int) -> list[str]:
    """``n`` photos spread evenly over the outside sets and the bundled model's test split."""
    from clarityx.screening.imageio import find_images

    pool = [str(p) for p in find_images([DATA / "external" / "mexico" / "images",
                                         DATA / "external" / "heimed" / "images"])]
    split = ROOT / "models" / "clarityx_lite2.split.csv"
    with open(split, newline="") as f:
        pool += [os.path.normpath(split.parent / r["path"]) for r in csv.DictReader(f) if r["split"] == "test"]
    pool = [p for p in pool if Path(p).is_file()]
    step = max(1.0, len(pool) / n)
    return [pool[int(i * step)] for i in range(min(n, len(pool)))]


def timed(argv: list[str]) -> dict:
    """Run a command; time each line it prints."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rows, stamps = [], []
    for line in proc.stdout:
        stamps.append(time.perf_counter() - start)
        rows.append(json.loads(line))
    if proc.wait() != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv[:6])} ...")
    wall = time.perf_counter() - start
    first_burst = sum(t <= stamps[0] + 0.05 for t in stamps)  # Ray hands rows over a block at a time
    span = stamps[-1] - stamps[0]
    steady = (len(rows) - first_burst) / span if span > 0 else float("nan")
    return {"rows": rows, "wall": wall, "rate": len(rows) / wall, "steady": steady, "first": stamps[0]}


def stage_costs(paths: list[str], batch: int = 4) -> dict:
    """CPU time per photo (ONNX Runtime with 1 thread, as a Ray actor runs it; CPU, not wall, time, so that other
    work on the machine does not count): decode; gate + prepare; the model with every class's Grad-CAM (batches
    of ``batch``); the heat map (overlay, PNG, written)."""
    import numpy as np
    from PIL import Image

    from clarityx.loader import load_classifier
    from clarityx.screening.heatmap import overlay
    from clarityx.screening.pipeline import decode, finish, gate_and_prepare

    classifier = load_classifier(None, threads=1)
    spent = {"decode": 0.0, "gate + prepare": 0.0, "model + Grad-CAM": 0.0, "heat map PNG": 0.0}
    ready, png_bytes, maps = [], 0, 0
    for path in paths:
        t = time.process_time()
        rgb, failed = decode(path)
        spent["decode"] += time.process_time() - t
        if failed:
            continue
        t = time.process_time()
        pixels, failed = gate_and_prepare(rgb, classifier)
        spent["gate + prepare"] += time.process_time() - t
        if not failed:
            ready.append(pixels)
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(ready), batch):
            chunk = ready[start:start + batch]
            t = time.process_time()
            predictions = classifier.predict(np.stack(chunk), explain=True)
            results = [finish(classifier, None, px, pr) for px, pr in zip(chunk, predictions)]
            spent["model + Grad-CAM"] += time.process_time() - t
            t = time.process_time()
            for px, pr, r in zip(chunk, predictions, results):
                if r.status == "ok":
                    out = Path(tmp) / f"{maps}.png"
                    Image.fromarray(overlay(px, pr.cams[classifier.classes.index(r.top)], 0.4)).save(out, format="PNG")
                    png_bytes += out.stat().st_size
                    maps += 1
            spent["heat map PNG"] += time.process_time() - t
    per = {k: 1000 * v / (len(ready) if k in ("model + Grad-CAM", "heat map PNG") else len(paths))
           for k, v in spent.items()}
    return {"ms": per, "photos": len(paths), "png_kb": png_bytes / max(1, maps) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--stage-photos", type=int, default=32, help="photos for the per-stage costs")
    args = ap.parse_args()
    paths = photos(args.photos)
    stages = stage_costs(paths[:args.stage_photos])
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        engines = {"single process": [],
                   "Ray, 1 actor": ["--engine", "ray", "--num-actors", "1"],
                   "Ray, 2 actors": ["--engine", "ray", "--num-actors", "2"]}
        for i, (name, extra) in enumerate(engines.items()):
            runs[name] = timed(CLARITYX + ["predict", *paths, "--json", "--heatmap-dir", f"{tmp}/h{i}", *extra])
            print(f"{name}: {runs[name]['wall']:.1f} s", file=sys.stderr)
    reference = {r["path"]: (r["status"], r["top"]) for r in runs["single process"]["rows"]}
    for name, run in runs.items():
        got = {r["path"]: (r["status"], r["top"]) for r in run["rows"]}
        assert len(run["rows"]) == len(paths) and got == reference, f"{name} disagrees with the single process"
    ok = sum(s == "ok" for s, _ in reference.values())
    one, two = runs["Ray, 1 actor"], runs["Ray, 2 actors"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs (load average {load:.1f} at the end), by `python benchmarks/ray_scale.py "
        f"--photos {args.photos}`: {len(paths)} photos ({ok} screened, {len(paths) - ok} refused), heat maps "
        "written, every engine's rows identical (path, status, top class).",
        "",
        "| engine | wall time (start included) | photos/s over it | first row after | steady photos/s |",
        "|---|---|---|---|---|",
        *(f"| {name} | {r['wall']:.1f} s | {r['rate']:.2f} | {r['first']:.1f} s | {r['steady']:.2f} |"
          for name, r in runs.items()),
        "",
        f"Scaling efficiency, 1 → 2 actors: {two['steady'] / (2 * one['steady']):.0%} steady "
        f"({two['rate'] / (2 * one['rate']):.0%} over the whole command).",
        "",
        f"CPU time per photo (first {stages['photos']} of these photos; ONNX Runtime, 1 thread, batches of 4): "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in stages["ms"].items())
        + f" — {sum(stages['ms'].values()):.0f} ms a photo; a heat map PNG is {stages['png_kb']:.0f} KB.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        old = RESULTS.read_text()
        block = f"{BEGIN}\n{text}\n{END}"
        if BEGIN in old:
            new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
        else:
            new = old.rstrip("\n") + "\n\n## `python benchmarks/ray_scale.py` (clarityx predict --engine ray)\n\n" \
                + block + "\n"
        RESULTS.write_text(new)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
