"""Render a model card as Markdown for people."""
from __future__ import annotations


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def gate_lines(gate: dict) -> list[str]:
    """The gate's measured rates as Markdown bullets (empty when not measured)."""
    measured = gate.get("measured")
    if not measured:
        return []
    return [f"- Out-of-distribution threshold {measured['ood_threshold']:.2f} (Mahalanobis distance of "
            f"the embedding), the validation photos' {100 * (1 - measured['target_validation_frr']):.0f}th "
            "percentile.",
            f"- Held-out test fundus photos wrongly refused: {measured['test_fundus_wrongly_refused']} "
            f"{measured['test_refusal_reasons']}",
            f"- Natural photos accepted: {measured['natural_photos_accepted']}; synthetic non-fundus "
            f"images accepted: {measured['synthetic_negatives_accepted']}",
            "- Degraded test photos caught: " + ", ".join(
                f"{k} {v}" for k, v in measured["degraded_caught"].items()),
            f"- Measured by `{gate.get('command', 'benchmarks/gate_rates.py')}`"]


def render(card) -> str:
    lines = [f"# Model card: {card.name}", "",
             f"**Intended use.** {card.intended_use}", "",
             "## Model", "",
             f"- Classes: {', '.join(card.classes)}",
             f"- Input: {card.input_size}×{card.input_size} RGB, field-of-view crop (clarityx.preprocess.prepare)",
             f"- Architecture: {card.architecture}",
             f"- Initialisation: {card.initialisation}",
             f"- Temperature (fitted on validation, applied at inference): {card.temperature:.3f}", ""]
    test = card.metrics.get("test")
    if test:
        lines += ["## Held-out test metrics", "",
                  f"{test['n']} images never seen in training in any form (near-duplicates grouped).", "",
                  f"- Accuracy {_pct(test['accuracy'])}, macro-F1 {test['macro_f1']:.3f}, "
                  f"macro ROC-AUC {test['macro_roc_auc']:.3f}, ECE {test['ece']:.3f}", "",
                  "| class | precision | recall | F1 | ROC-AUC | n |", "|---|---|---|---|---|---|"]
        for c, m in test["per_class"].items():
            lines.append(f"| {c} | {_pct(m['precision'])} | {_pct(m['recall'])} | {m['f1']:.3f} | "
                         f"{test['roc_auc_ovr'].get(c, float('nan')):.3f} | {m['support']} |")
        lines += ["", "Confusion matrix (rows: truth, columns: prediction):", "",
                  "| | " + " | ".join(card.classes) + " |", "|---" * (len(card.classes) + 1) + "|"]
        for c, row in zip(card.classes, test["confusion_matrix"]):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
    by_source = card.metrics.get("test_by_source")
    if by_source:
        lines += ["Per source (test):", ""]
        lines += [f"- {src}: accuracy {_pct(m['accuracy'])} on {m['n']} images {m['labels']}"
                  for src, m in by_source.items()]
        lines.append("")
    if card.comparison:
        lines += ["## Runs compared (same split; the bundled run was chosen on validation macro-F1)", "",
                  "| run | kind | validation macro-F1 | test macro-F1 | test accuracy | lowest recall | notes |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['run']} | {r.get('kind', '')} | {r.get('validation_macro_f1', float('nan')):.3f} | "
                  f"{r['macro_f1']:.3f} | {_pct(r['accuracy'])} | {_pct(r.get('min_recall'))} | "
                  f"{r.get('notes', '')} |" for r in card.comparison]
        lines.append("")
    gate = gate_lines(card.gate)
    if gate:
        lines += ["## Gate (refusing photos that cannot be graded)", "", *gate, ""]
    lines += ["## Data", ""]
    for k, v in card.data.items():
        if isinstance(v, list):
            lines += [f"- {k.replace('_', ' ')}:"] + [f"  - {item}" for item in v]
        else:
            lines.append(f"- {k.replace('_', ' ')}: {v}")
    lines += ["", "## Audit", ""] + [f"- {k}: {v}" for k, v in card.audit.items()]
    lines += ["", "## Limitations", ""] + [f"- {x}" for x in card.limitations]
    lines += ["", "## Training", ""] + [f"- {k}: {v}" for k, v in card.training.items()]
    return "\n".join(lines) + "\n"
