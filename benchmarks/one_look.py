#!/usr/bin/env python
"""One look per photo (issue 26, item 3): a large JPEG decoded at the scale the gate and the model need
(``imageio.SCREEN_SIDE``, libjpeg's DCT scaling), its field of view found once and read by the gate and
``prepare`` alike. Does it answer as the full-resolution decode did, and how long does a photo take?

    python benchmarks/one_look.py [--only speed|agree] [--repeats 5] [--reference 9f5ce1e] [--no-write]

speed  An ~8-megapixel fundus photo (an IDRiD test photo, 4288×2848, resampled to 3504×2336, the fundus camera
       of issue 26, and saved as a JPEG at quality 95 under .cache/benchmarks/), and the 12-megapixel original,
       through ``pipeline.analyse`` (decode → gate → prepare → model with Grad-CAM → finish), stage by stage:
       now, and as the code was at ``--reference`` (imageio, preprocess and gate read from git).
agree  The bundled model's answer (gate verdict, the embedding tests, top class, calibrated probabilities) on
       the outside photos, through the pipeline as it is (reduced decode, one look) against
       - the code at ``--reference`` with a full decode, on the photos as stored (Mexico's 80 originals at
         1,000 px, HEI-MED's 169 at 512×457: too small to be decoded reduced, so this checks the one look);
       - the same pipeline with a full-resolution decode, on large JPEGs: the IDRiD test photos as taken
         (4288×2848: read at 1/2), Mexico's originals resized ×2 and ×4 (read at 1/2 and 1/4) and HEI-MED's
         resized to 2,000 px on the short side (1/2), each saved as a JPEG at quality 95. Photos resized up
         have no detail finer than their source; the IDRiD photos are the real test.
       Goal: the same top answer everywhere, probabilities within 0.02.

The figures go into ``benchmarks/RESULTS.md`` (between markers, replaced on each run) unless ``--no-write``.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- one_look: begin -->", "<!-- one_look: end -->"
EXTERNAL = ROOT.parent / "shared" / "data" / "external"
IDRID = Path("/work/fetched/idrid/dataset/B. Disease Grading/1. Original Images/b. Testing Set")
CACHE = ROOT / ".cache" / "benchmarks"
REFERENCE = "9f5ce1e"  # the last commit before the one look
TOLERANCE = 0.02

from clarityx.screening import pipeline  # noqa: E402
from clarityx.screening.engine import OnnxClassifier  # noqa: E402
from clarityx.screening.imageio import load_image  # noqa: E402
from clarityx.screening.preprocess import field_of_view  # noqa: E402


def reference_code(ref: str) -> types.SimpleNamespace:
    """imageio, preprocess and gate as they were at ``ref`` (read from git), as separate modules."""
    def module(name: str, path: str, replace: tuple[str, str] | None = None) -> types.ModuleType:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], check=True,
                                capture_output=True, text=True).stdout
        if replace:
            source = source.replace(*replace)
        mod = types.ModuleType(name)
        sys.modules[name] = mod  # dataclasses look their module up
        exec(compile(source, f"{ref}:{path}", "exec"), mod.__dict__)
        return mod

    pre = module("reference_preprocess", "clarityx/screening/preprocess.py")
    gate = module("reference_gate", "clarityx/screening/gate.py",
                  ("from clarityx.screening.preprocess import", "from reference_preprocess import"))
    imageio = module("reference_imageio", "clarityx/screening/imageio.py")
    return types.SimpleNamespace(preprocess=pre, gate=gate, imageio=imageio, ref=ref)


def jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def eight_megapixel_photo() -> Path:
    """An IDRiD test photo (4288×2848) resampled to 3504×2336 (8.2 MP), a JPEG at quality 95."""
    path = CACHE / "idrid_001_3504x2336.jpg"
    if not path.is_file():
        rgb = load_image(IDRID / "IDRiD_001.jpg")
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(cv2.resize(rgb, (3504, 2336), interpolation=cv2.INTER_AREA)))
    return path


# ---------------------------------------------------------------------------------------------- speed

def stages_now(c, data: bytes, reduced: bool = True) -> dict[str, float]:
    s = c.card.gate_settings
    t = [time.perf_counter()]
    if reduced:
        rgb, failed = pipeline.decode(data, s)
    else:
        rgb, failed = load_image(data, max_bytes=s.max_file_bytes, max_pixels=s.max_pixels,
                                 min_side=s.min_side), None
    t.append(time.perf_counter())
    view = field_of_view(rgb, s.fov_threshold)
    rejection, measures = pipeline.inspect(view, s)
    t.append(time.perf_counter())
    pixels = c.prepare(view)
    t.append(time.perf_counter())
    prediction = c.explain(pixels)
    t.append(time.perf_counter())
    result = pipeline.finish(c, rgb, pixels, prediction, measures)
    t.append(time.perf_counter())
    assert failed is None and rejection is None and result.status == "ok", (failed, rejection, result.message)
    return dict(zip(["decode", "gate", "prepare", "model + Grad-CAM", "finish"], np.diff(t)))


def stages_then(c, data: bytes, ref) -> dict[str, float]:
    s = c.card.gate_settings
    t = [time.perf_counter()]
    rgb = ref.imageio.load_image(data, max_bytes=s.max_file_bytes, max_pixels=s.max_pixels, min_side=s.min_side)
    t.append(time.perf_counter())
    rejection, measures = ref.gate.inspect(rgb, s)
    t.append(time.perf_counter())
    pixels = ref.preprocess.prepare(rgb, c.size, c.card.contrast)
    t.append(time.perf_counter())
    prediction = c.explain(pixels)
    t.append(time.perf_counter())
    result = pipeline.finish(c, rgb, pixels, prediction, measures)
    t.append(time.perf_counter())
    assert rejection is None and result.status == "ok", (rejection, result.message)
    return dict(zip(["decode", "gate", "prepare", "model + Grad-CAM", "finish"], np.diff(t)))


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}–{max(values):.3f}]"


def speed(c, ref, repeats: int) -> list[str]:
    lines = []
    for label, path in (("8 MP (3504×2336 JPEG)", eight_megapixel_photo()),
                        ("12 MP (IDRiD original, 4288×2848 JPEG)", IDRID / "IDRiD_001.jpg")):
        data = path.read_bytes()
        runs: dict[str, list[dict[str, float]]] = {"before": [], "full": [], "after": []}
        totals: list[float] = []
        stages_now(c, data), stages_then(c, data, ref)  # warm caches
        for _ in range(repeats):  # alternating, so the machine's load falls on both alike
            runs["before"].append(stages_then(c, data, ref))
            runs["full"].append(stages_now(c, data, reduced=False))
            runs["after"].append(stages_now(c, data))
            t0 = time.perf_counter()
            result = pipeline.analyse(c, data)
            totals.append(time.perf_counter() - t0)
            assert result.status == "ok"
        lines += [f"**{label}**, {len(data) / 2**20:.1f} MB; seconds, median [min–max] of {repeats}:", "",
                  f"| stage | before ({ref.ref}: full decode, four looks) | full decode, one look | "
                  "after (reduced decode, one look) |", "|---|---|---|---|"]
        for stage in runs["after"][0]:
            lines.append(f"| {stage} | " + " | ".join(fmt([r[stage] for r in runs[k]]) for k in runs) + " |")
        lines.append("| **pipeline** | " + " | ".join(f"**{fmt([sum(r.values()) for r in runs[k]])}**"
                                                   for k in runs) + " |")
        lines += ["", f"`pipeline.analyse(classifier, bytes)` as a whole, after: {fmt(totals)} s (goal ≤ 0.4 s).", ""]
        print("\n".join(lines[-len(runs["after"][0]) - 6:]), flush=True)
    return lines


# ---------------------------------------------------------------------------------------------- agree

def answers(c, photos: list[bytes], decode, look) -> list[dict]:
    """Each photo through decode → gate → prepare → model → finish; its status, reason and probabilities."""
    rows, pending = [], []
    for data in photos:
        rgb = decode(data)
        rejection, measures, pixels = look(rgb)
        rows.append({"status": "rejected", "reason": rejection.reason} if rejection else None)
        if not rejection:
            pending.append((len(rows) - 1, rgb, pixels, measures))
    for start in range(0, len(pending), 16):
        chunk = pending[start:start + 16]
        predictions = c.predict(np.stack([p[2] for p in chunk]))
        for (i, rgb, pixels, measures), prediction in zip(chunk, predictions):
            r = pipeline.finish(c, rgb, pixels, prediction, measures)
            rows[i] = {"status": r.status, "reason": r.reason, "top": r.top,
                       "probabilities": np.asarray(prediction.probabilities), "shape": rgb.shape[:2]}
    return rows


def compare(name: str, a: list[dict], b: list[dict], names: list[str]) -> tuple[list[str], bool]:
    """A table row for answers ``a`` (the reference) against ``b``, and notes naming each photo that changed."""
    same_verdict = sum(x["status"] == y["status"] and x["reason"] == y["reason"] for x, y in zip(a, b))
    both = [(n, x, y) for n, x, y in zip(names, a, b) if x["status"] == y["status"] == "ok"]
    same_top = sum(x["top"] == y["top"] for _, x, y in both)
    diffs = np.array([float(np.abs(x["probabilities"] - y["probabilities"]).max()) for _, x, y in both] or [0.0])
    shapes = sorted({f"{x['shape'][1]}×{x['shape'][0]} → {y['shape'][1]}×{y['shape'][0]}" for _, x, y in both})
    ok = same_verdict == len(a) and same_top == len(both) and diffs.max() <= TOLERANCE
    row = (f"| {name} | {len(a)} | {'; '.join(shapes[:2])}{' …' if len(shapes) > 2 else ''} | {same_verdict} | "
           f"{same_top} of {len(both)} | {np.median(diffs):.4f} | {(diffs <= TOLERANCE).mean():.0%} | "
           f"{diffs.max():.4f} | {'yes' if ok else '**no**'} |")
    notes = [f"{n}: {x['status']} {x['reason'] or ''} → {y['status']} {y['reason'] or ''}"
             for n, x, y in zip(names, a, b) if (x["status"], x["reason"]) != (y["status"], y["reason"])]
    notes += [f"{n}: {x['top']} {x['probabilities'].max():.2f} → {y['top']} {y['probabilities'].max():.2f}"
              for n, x, y in both if x["top"] != y["top"]]
    print(row, *notes, sep="\n", flush=True)
    return [row] + ([f"| ↳ changed: {'; '.join(notes)} | | | | | | | | |"] if notes else []), ok


def agree(c, ref) -> list[str]:
    s = c.card.gate_settings

    def now_decode(data):
        rgb, failed = pipeline.decode(data, s)
        assert failed is None, failed.message
        return rgb

    def full_decode(data):
        return load_image(data, max_bytes=s.max_file_bytes, max_pixels=s.max_pixels, min_side=s.min_side)

    def now_look(rgb):
        pixels, failed, measures = pipeline.gate_measure_prepare(rgb, c)
        return (None if failed is None else types.SimpleNamespace(reason=failed.reason)), measures, pixels

    def then_decode(data):
        return ref.imageio.load_image(data, max_bytes=s.max_file_bytes, max_pixels=s.max_pixels,
                                      min_side=s.min_side)

    def then_look(rgb):
        rejection, measures = ref.gate.inspect(rgb, s)
        return rejection, measures, (None if rejection else ref.preprocess.prepare(rgb, c.size, c.card.contrast))

    mexico = sorted((EXTERNAL / "mexico" / "originals").glob("*.jpg"))
    heimed = sorted((EXTERNAL / "heimed" / "images").glob("*.jpg"))
    idrid = sorted(IDRID.glob("*.jpg"))

    def resized(paths, scale=None, short=None):
        out = []
        for p in paths:
            rgb = load_image(p)
            k = scale if scale else short / min(rgb.shape[:2])
            out.append(jpeg(cv2.resize(rgb, (round(rgb.shape[1] * k), round(rgb.shape[0] * k)),
                                       interpolation=cv2.INTER_CUBIC)))
        return out

    lines = ["| photos | n | decoded (reference → now) | same verdict (gate, embedding tests) | same top answer | "
             "median largest probability change | share within 0.02 | largest | all within the goal |",
             "|---|---|---|---|---|---|---|---|---|"]
    checks = []
    for name, paths in ((f"Mexico originals as stored: {ref.ref} against now", mexico),
                        (f"HEI-MED as stored: {ref.ref} against now", heimed)):
        photos = [p.read_bytes() for p in paths]
        rows, ok = compare(name, answers(c, photos, then_decode, then_look), answers(c, photos, now_decode, now_look),
                           [p.name for p in paths])
        lines += rows
        checks.append(ok)
    photos = [p.read_bytes() for p in idrid]
    idrid_full = answers(c, photos, full_decode, now_look)
    rows, ok = compare("IDRiD test photos as taken: full decode against now", idrid_full,
                       answers(c, photos, now_decode, now_look), [p.name for p in idrid])
    lines += rows
    checks.append(ok)
    photos = [jpeg(full_decode(d)) for d in photos]
    floor, _ = compare("*for scale:* IDRiD, full decode against the same photo re-saved as a JPEG at quality 95, "
                       "full decode", idrid_full, answers(c, photos, full_decode, now_look), [p.name for p in idrid])
    for name, make, paths in (("Mexico originals ×2 (2000 px JPEG): full decode against now",
                               lambda: resized(mexico, 2), mexico),
                              ("Mexico originals ×4 (4000 px JPEG), first 20: full decode against now",
                               lambda: resized(mexico[:20], 4), mexico[:20]),
                              ("HEI-MED at 2,000 px short side (JPEG): full decode against now",
                               lambda: resized(heimed, short=2000), heimed)):
        photos = make()
        rows, ok = compare(name, answers(c, photos, full_decode, now_look), answers(c, photos, now_decode, now_look),
                           [p.name for p in paths])
        lines += rows
        checks.append(ok)
    lines += floor
    lines += ["", f"**{'All' if all(checks) else 'Not all'} within the goal** (the same verdict and top answer, "
              f"every probability within {TOLERANCE}). The last row is not a check: it is how much this model moves "
              "when nothing but an invisible JPEG re-save changes."]
    return lines


def write(lines: list[str]) -> None:
    block = "\n".join([BEGIN, *lines, END])
    text = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{block}\n{rest}"
    RESULTS.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["speed", "agree"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--reference", default=REFERENCE, help="the git commit whose code is 'before'")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    ref = reference_code(args.reference)
    c = OnnxClassifier()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = ["## One look per photo: a large JPEG decoded at the scale needed, its field of view found once", "",
             f"Measured {stamp} on {platform.machine()}, {os.cpu_count()} CPUs (shared with a training run), by "
             f"`python benchmarks/one_look.py{' --only ' + args.only if args.only else ''}` "
             f"(bundled ONNX model, {c.size} px, contrast {c.card.contrast}; 'before' is the code at "
             f"{args.reference}).", ""]
    if args.only in (None, "speed"):
        lines += speed(c, ref, args.repeats)
    if args.only in (None, "agree"):
        lines += ["The bundled model's answers (status, refusal reason, top class, calibrated probabilities):", ""]
        lines += agree(c, ref)
    if not args.no_write:
        write(lines)


if __name__ == "__main__":
    main()
