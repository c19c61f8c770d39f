"""``clarityx evaluate``: a model's metrics on labelled photos, with the gate's refusals counted.

By default it evaluates the test split recorded in the model card (paths relative to
DATA), which reproduces the card's numbers. Metrics are computed on every readable
image (as the card's are); the gate's refusals are reported beside them.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from clarityx.datasets import Sample, load_dataset
from clarityx.inference import Classifier
from clarityx.metrics import classification_report
from clarityx.pipeline import decode
from clarityx.gate import check_embedding, check_image
from clarityx.preprocess import prepare


def card_test_samples(classifier: Classifier, data: str | Path) -> list[Sample]:
    split = classifier.card.split
    files = split.get("test_files") or []
    if not files:
        raise ValueError("the model card records no test files; use --files all")
    sources = split.get("test_sources") or [None] * len(files)
    grades = split.get("test_grades") or [None] * len(files)
    return [Sample(Path(data) / f, label, source=src, grade=grade)
            for f, label, src, grade in zip(files, split["test_labels"], sources, grades)]


def evaluate(classifier: Classifier, data: str | Path, files: str = "card-test",
             layout: str | None = None, batch_size: int = 32) -> dict:
    samples = card_test_samples(classifier, data) if files == "card-test" else load_dataset(data, layout)
    samples = [s for s in samples if s.label in classifier.classes]
    if not samples:
        raise ValueError("no labelled images of the model's classes found")
    labels, probs, sources, grades, gate_reasons, unreadable = [], [], [], [], Counter(), []
    for start in range(0, len(samples), batch_size):
        batch, pixels = [], []
        for s in samples[start:start + batch_size]:
            rgb, failed = decode(s.path)
            if failed:
                unreadable.append(str(s.path))
                continue
            rejection = check_image(rgb)
            if rejection:
                gate_reasons[rejection.reason] += 1
            batch.append((s, rejection is not None))
            pixels.append(prepare(rgb, classifier.size))
        if not pixels:
            continue
        for (s, gated), p in zip(batch, classifier.predict(np.stack(pixels))):
            if not gated:
                rejection = check_embedding(classifier, p.embedding)
                if rejection:
                    gate_reasons[rejection.reason] += 1
            labels.append(classifier.classes.index(s.label))
            probs.append(p.probabilities)
            sources.append(s.source or "unknown")
            grades.append(-1 if s.grade is None else s.grade)
    y, p = np.array(labels), np.array(probs)
    report = classification_report(p, y, classifier.classes)
    src = np.array(sources)
    report["by_source"] = {
        name: {"n": int((src == name).sum()), "accuracy": float((p[src == name].argmax(1) == y[src == name]).mean())}
        for name in sorted(set(sources))}
    if "diabetic_retinopathy" in classifier.classes and any(g >= 0 for g in grades):
        # The model detects DR, it does not grade it: report how often each grade is flagged.
        dr = classifier.classes.index("diabetic_retinopathy")
        g = np.array(grades)
        report["dr_flagged_by_grade"] = {
            str(k): {"n": int((g == k).sum()), "flagged": float((p[g == k].argmax(1) == dr).mean())}
            for k in sorted(set(g[g >= 0]))}
    report["gate"] = {"refused": int(sum(gate_reasons.values())), "of": len(labels),
                      "reasons": dict(gate_reasons)}
    report["unreadable"] = unreadable
    report["model"] = str(classifier.path)
    return report


def format_report(r: dict) -> str:
    lines = [f"{r['n']} images: accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}, "
             f"macro ROC-AUC {r['macro_roc_auc'] or float('nan'):.3f}, ECE {r['ece']:.3f}",
             f"{'class':24s} {'prec':>6s} {'recall':>6s} {'f1':>6s} {'auc':>6s} {'n':>5s}"]
    for c, m in r["per_class"].items():
        lines.append(f"{c:24s} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} "
                     f"{r['roc_auc_ovr'].get(c, float('nan')):6.3f} {m['support']:5d}")
    lines.append("confusion matrix (rows truth, columns prediction): " + str(r["confusion_matrix"]))
    for name, m in r["by_source"].items():
        lines.append(f"source {name}: accuracy {m['accuracy']:.3f} on {m['n']}")
    for grade, m in r.get("dr_flagged_by_grade", {}).items():
        lines.append(f"DR grade {grade}: flagged as diabetic_retinopathy in {m['flagged']:.1%} of {m['n']}")
    g = r["gate"]
    lines.append(f"gate refused {g['refused']} of {g['of']} ({g['reasons']}); unreadable {len(r['unreadable'])}")
    return "\n".join(lines)


def confusion_figure(report: dict, classes: list[str]):
    """Plotly heat map of the confusion matrix (rows: truth, columns: prediction)."""
    import plotly.graph_objects as go

    cm = report["confusion_matrix"]
    fig = go.Figure(go.Heatmap(z=cm, x=classes, y=classes, colorscale="Blues", text=cm, texttemplate="%{text}"))
    fig.update_layout(title=f"Confusion matrix — {report['n']} photos, macro-F1 {report['macro_f1']:.3f}",
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")
    return fig
