"""A model card for people: Markdown (the card file, the Model page) and the confusion-matrix figure."""
from __future__ import annotations

from clarityx.screening.grades import referable_score_name


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def gate_lines(gate: dict) -> list[str]:
    """The gate's measured rates as Markdown bullets (empty when not measured)."""
    measured = gate.get("measured")
    if not measured:
        return []
    limit = (gate.get("settings") or {}).get("max_ood_distance")
    return [f"- Out-of-distribution threshold {'–' if limit is None else f'{limit:.2f}'} (Mahalanobis distance of "
            f"the embedding): {gate.get('max_ood_distance_fitted_on', 'fitted by train.py')}.",
            f"- Held-out test fundus photos wrongly refused: {measured['test_fundus_wrongly_refused']} "
            f"{measured['test_refusal_reasons']}",
            f"- Natural photos accepted: {measured['natural_photos_accepted']}; synthetic non-fundus "
            f"images accepted: {measured['synthetic_negatives_accepted']}",
            f"- Front-of-eye close-ups refused (held-out generator seed): "
            f"{measured.get('front_of_eye_refused', 'not measured')} {measured.get('front_of_eye_reasons', '')}",
            "- Degraded test photos caught: " + ", ".join(
                f"{k} {v}" for k, v in measured["degraded_caught"].items()),
            f"- Measured by `{gate.get('command', 'benchmarks/gate_rates.py')}`"]


def _ci(interval) -> str:
    return "" if not interval else f" [{100 * interval[0]:.1f}–{100 * interval[1]:.1f}]"


def _ci3(interval) -> str:
    return "" if not interval else f" [{interval[0]:.3f}–{interval[1]:.3f}]"


def _mapping_lines(mapping: dict) -> list[str]:
    return ["| ODIR-5K keyword | condition | DR grade |", "|---|---|---|"] + [
        f"| {k} | {v['condition']} | {'' if v['dr_grade'] is None else v['dr_grade']} |" for k, v in mapping.items()]


def test_lines(test: dict, classes: list[str]) -> list[str]:
    """The held-out test section: headline figures with intervals, per class, per source, DR."""
    ci = test.get("intervals", {})
    auc = test.get("macro_roc_auc")
    lines = [f"{test['n']} eyes of the model's classes that it never saw in any form (patients and "
             "near-duplicates kept whole). 95% intervals: patient-level bootstrap.", "",
             f"- Accuracy {_pct(test['accuracy'])}{_ci(ci.get('accuracy'))}, macro-F1 {test['macro_f1']:.3f}"
             f"{_ci3(ci.get('macro_f1'))}, macro ROC-AUC {'–' if auc is None else f'{auc:.3f}'}, "
             f"ECE {test['ece']:.3f}{_ci3(ci.get('ece'))}"
             + (f", quadratic weighted kappa {test['quadratic_weighted_kappa']:.3f}"
                f"{_ci3(ci.get('quadratic_weighted_kappa'))}" if "quadratic_weighted_kappa" in test else ""), "",
             "| class | precision | recall (95% CI) | F1 | ROC-AUC | n |", "|---|---|---|---|---|---|"]
    for c, m in test["per_class"].items():
        lines.append(f"| {c} | {_pct(m['precision'])} | {_pct(m['recall'])}{_ci(ci.get('recall', {}).get(c))} | "
                     f"{m['f1']:.3f} | {test['roc_auc_ovr'].get(c, float('nan')):.3f} | {m['support']} |")
    lines += ["", "Confusion matrix (rows: truth, columns: prediction):", "",
              "| | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    lines += [f"| {c} | " + " | ".join(str(v) for v in row) + " |" for c, row in zip(classes, test["confusion_matrix"])]
    lines.append("")
    if test.get("by_source"):
        lines += ["Per source:", ""]
        for src, m in test["by_source"].items():
            normal = (f"; normal eyes called normal {_pct(m['normal_accuracy'])}{_ci(m['normal_accuracy_ci'])} "
                      f"of {m['normal_eyes']}" if "normal_accuracy" in m else "")
            f1 = (f", macro-F1 over its classes {m['macro_f1']:.3f}{_ci3(m.get('macro_f1_ci'))}; recall "
                  + ", ".join(f"{c} {_pct(v)}" for c, v in m["recall"].items()) if "macro_f1" in m else "")
            lines.append(f"- {src}: accuracy {_pct(m['accuracy'])} on {m['n']} eyes{f1}{normal}")
        lines.append("")
    rd = test.get("referable_dr")
    if rd:
        lines += [f"Referable diabetic retinopathy ({rd['definition']}), flagged when "
                  f"{referable_score_name(classes)} ≥ "
                  f"{rd['threshold']:.3f} (threshold chosen on validation photos for sensitivity ≥ 90%):", "",
                  f"- Sensitivity {_pct(rd['sensitivity'])}{_ci(rd['sensitivity_ci'])} of {rd['positives']}, "
                  f"specificity {_pct(rd['specificity'])}{_ci(rd['specificity_ci'])} of {rd['negatives']}",
                  "- Flagged per grade: " + ", ".join(f"grade {g}: {_pct(m['flagged'])} of {m['n']}"
                                                      for g, m in rd["flagged_by_grade"].items()), ""]
    of = test.get("other_findings")
    if of:
        lines += [f"Eyes with only findings the model has no class for ({of['n']}): called normal with p ≥ 0.8 in "
                  f"{_pct(of['called_normal_p_ge_0.8'])}{_ci(of['called_normal_p_ge_0.8_ci'])}; top answers "
                  f"{of['top_class']}.", ""]
    mc = test.get("multiple_conditions")
    if mc:
        lines += [f"Eyes with two of the model's conditions ({mc['n']}): the top answer is one of them in "
                  f"{_pct(mc['top_is_one_of_its_conditions'])}.", ""]
    return lines


OUTSIDE_FIGURES = (("healthy_called_normal", "healthy eyes called normal"), ("dr_found", "eyes with DR: DR on top"),
                   ("referable_flagged", "referable eyes flagged"), ("healthy_not_flagged", "healthy eyes not flagged"),
                   ("referable_flagged_fitted_without_this_set", "referable flagged, threshold fitted without the set"),
                   ("healthy_not_flagged_fitted_without_this_set", "healthy not flagged, same threshold"),
                   ("accepted", "photos accepted by the gate"))


def outside_lines(outside: dict) -> list[str]:
    """The outside sets (other countries and cameras, never trained on): one table row per set."""
    if not outside:
        return []
    lines = ["Photos from other countries and cameras, never used for training or for any threshold "
             "(`clarityx.data.external`); patient-bootstrap 95% intervals. Healthy: no retinopathy; "
             "referable: proliferative DR or macular oedema (Mexico), exudates (HEI-MED); flagged at the "
             "card's referable-DR threshold.", "",
             "| set | photos | " + " | ".join(label for _, label in OUTSIDE_FIGURES) + " | referable ROC AUC |",
             "|---|---|" + "---|" * (len(OUTSIDE_FIGURES) + 1)]
    for name, r in outside.items():
        cells = []
        for key, _ in OUTSIDE_FIGURES:
            m = r.get(key)
            missing = not m or m["value"] != m["value"]  # absent, or NaN: no eye to count
            cells.append("–" if missing else f"{_pct(m['value'])}{_ci(m['ci95'])} of {m['n']}")
        auc = r.get("referable_auc")
        cells.append("–" if not auc or auc["value"] != auc["value"] else f"{auc['value']:.3f}{_ci3(auc['ci95'])}")
        lines.append(f"| {name} | {r['photos']} | " + " | ".join(cells) + " |")
    pairs = [(name, r["size_pairs"]) for name, r in outside.items() if r.get("size_pairs")]
    for name, sp in pairs:
        lines += ["", f"Same photo at two sizes ({name}: {sp['sizes']}): the same top answer in "
                      f"{_pct(sp['same_top'])} of {sp['n']}; the largest probability change "
                      f"{sp['max_abs_difference']:.3f}."]
    return lines + [""]


def answers_lines(card) -> list[str]:
    """The answers beside the classes (the card's ``answers``) and the sets that check each of them."""
    a, cal = card.answers or {}, card.calibration or {}
    lines = []
    if "dr_grade" in a:
        how = (card.training.get("phase1_trained_on") or {}).get("dr_grade", "regression")
        fitted = ("learnt with the classes (multi-task)" if how == "multitask"
                  else "a multinomial regression fitted on the embedding after the head")
        lines.append(f"- DR grade: a softmax layer (grades 0-4) on the embedding, {fitted}, from every graded eye; "
                     f"temperature {a['dr_grade']['temperature']:.3f} (calibration split). The referable score is its "
                     "P(grade ≥ 2).")
    left_out = cal.get("dr_threshold_left_out")
    if left_out:
        lines.append("- Referable threshold fitted without each outside set (each set is reported at its own): "
                     + ", ".join(f"{k} {v:.3f}" for k, v in left_out.items()))
    if cal.get("glaucoma_operating_point"):
        lines.append(f"- Glaucoma: {cal['glaucoma_operating_point']}.")
    if "haze" in a:
        lines.append(f"- Haze (a clouded lens): logistic check on {', '.join(a['haze'].get('inputs', []))}, fitted on "
                     f"{a['haze'].get('fitted_on', 'training photos')}; a hazy photo is answered 'see an eye doctor'.")
    if "front_of_eye" in a:
        f = a["front_of_eye"]
        lines.append(f"- Front of the eye: a logistic probe on the embedding, fitted on {f.get('fitted_on', '')}.")
        for form, rates in (f.get("refused_when_its_source_was_held_out") or {}).items():
            lines.append(f"  - refused with its source held out of the fit ({form.replace('_', ' ')}): "
                         + ", ".join(f"{src} {_pct(v)}" for src, v in sorted(rates.items())))
    checks = card.metrics.get("answer_checks") or {}
    c = checks.get("csdi")
    if c:
        sev, clear = c["severe_called_cataract_or_hazy"], c["clear_called_cataract_or_hazy"]
        lines.append(f"- CSDI (cataract, another hospital, never fitted on): opacity ≥ 3 answered cataract, hazy or "
                     f"'blurred: see an eye doctor' {_pct(sev['value'])}{_ci(sev['ci95'])} of {sev['n']}; clear "
                     f"(≤ 1) {_pct(clear['value'])}{_ci(clear['ci95'])} of {clear['n']}; Spearman P(cataract) with "
                     f"the opacity score {c['spearman_p_cataract_score']:.2f}.")
    for form, m in (checks.get("front_of_eye") or {}).items():
        r = m["refused"]
        lines.append(f"- Real front-of-eye photos ({form.replace('_', ' ')}) refused {_pct(r['value'])}"
                     f"{_ci(r['ci95'])} of {r['n']} (reasons: {m['reasons']}; the probe was fitted on these "
                     "sources: the held-out rates are above).")
    i = checks.get("idrid_test")
    if i:
        extra = (f"; sensitivity {_pct(i['sensitivity']['value'])}{_ci(i['sensitivity']['ci95'])}, specificity "
                 f"{_pct(i['specificity']['value'])}{_ci(i['specificity']['ci95'])}" if "sensitivity" in i else "")
        lines.append(f"- IDRiD test part ({i['photos']} photos; its camera is in the fit, so reported apart): "
                     f"referable AUC {i['referable_auc']:.3f}{extra}.")
    return lines + [""] if lines else []


def render(card) -> str:
    cal = card.calibration or {}
    lines = [f"# Model card: {card.name}", "",
             f"**Intended use.** {card.intended_use}", "",
             "## Model", "",
             f"- Classes: {', '.join(card.classes)}",
             f"- Input: {card.input_size}×{card.input_size} RGB, field-of-view crop, camera normalisation "
             f"`{card.contrast}` (clarityx.screening.preprocess.prepare)",
             f"- Architecture: {card.architecture}",
             f"- Initialisation: {card.initialisation}",
             f"- Calibration: temperature {card.temperature:.3f}"
             + (f" after undoing {cal.get('prior_correction_strength', 1.0):.0%} of the class weighting's "
                f"({cal.get('class_weight')}) prior shift" if card.log_prior_correction else "")
             + f"; fitted on the {cal.get('fitted_on', 'validation split')}"]
    choice = cal.get("prior_correction_choice")
    if isinstance(choice, list) and choice:
        lines.append("- Prior-correction strengths tried (validation): " + "; ".join(
            f"{row['strength']:.0%}: macro-F1 {row['validation_macro_f1']:.3f}, ECE {row['validation_ece']:.3f}"
            for row in choice))
    if card.dr_threshold is not None:
        lines.append(f"- Referable-DR operating threshold: {referable_score_name(card.classes)} ≥ "
                     f"{card.dr_threshold:.3f} "
                     f"({cal.get('dr_threshold_chosen_on', 'validation')})")
    lines.append("")
    test = card.metrics.get("test")
    if test:
        lines += ["## Held-out test metrics", "", *test_lines(test, card.classes)]
        before = card.metrics.get("test_ece_before_calibration")
        if before is not None:
            lines += [f"ECE before calibration (raw softmax of the weighted model): {before:.3f}.", ""]
        probe = card.metrics.get("camera_probe_test_normal_eyes")
        if probe:
            lines += [f"Camera probe: a linear classifier tells ODIR from EyePACS among {probe['n']} normal test "
                      f"eyes from the model's embedding with balanced accuracy {probe['balanced_accuracy']:.3f} "
                      "(0.5 = the camera cannot be read).", ""]
    outside = outside_lines(card.metrics.get("outside") or {})
    if outside:
        lines += ["## Outside check", "", *outside]
    answers = answers_lines(card)
    if answers:
        lines += ["## Answers beside the classes, and the sets that check them", "", *answers]
    if card.comparison:
        lines += ["## Runs compared", "",
                  "| run | kind | validation macro-F1 | test macro-F1 | test accuracy | lowest recall | notes |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['run']} | {r.get('kind', '')} | {r.get('validation_macro_f1', float('nan')):.3f} | "
                  f"{r['macro_f1']:.3f} | {_pct(r['accuracy'])} | {_pct(r.get('min_recall'))} | "
                  f"{r.get('notes', '')} |" for r in card.comparison]
        lines.append("")
    gate = gate_lines(card.gate)
    settings = card.gate.get("settings")
    if gate or settings:
        lines += ["## Gate (refusing photos that cannot be graded)", "", *gate]
        if settings:
            lines.append("- Limits it was measured with (clarityx.screening.limits.GateSettings): "
                         + ", ".join(f"{k} {v}" for k, v in settings.items()))
        lines.append("")
    lines += ["## Data", ""]
    for k, v in card.data.items():
        if k == "label_mapping":
            continue
        if isinstance(v, list):
            lines += [f"- {k.replace('_', ' ')}:"] + [f"  - {item}" for item in v]
        else:
            lines.append(f"- {k.replace('_', ' ')}: {v}")
    if card.data.get("label_mapping"):
        lines += ["", "### How ODIR-5K's per-eye keywords become labels", "",
                  "An eye is labelled by its own keywords (never the patient-level flags). One condition → that "
                  "class (other findings beside it do not change it); two conditions → `multiple_conditions`; "
                  "only findings not listed here (or a suspicion) → `other_findings`. Neither of the last two is "
                  "trained on; their test eyes are reported above.", "",
                  *_mapping_lines(card.data["label_mapping"])]
    lines += ["", "## Audit", ""] + [f"- {k}: {v}" for k, v in card.audit.items()]
    lines += ["", "## Limitations", ""] + [f"- {x}" for x in card.limitations]
    lines += ["", "## Training", ""] + [f"- {k}: {v}" for k, v in card.training.items()
                                        if k not in ("arguments", "preprocessing_comparison")]
    compared = card.training.get("preprocessing_comparison")
    if compared:
        lines += ["", "### Camera normalisation compared (cheap proxy, validation photos)", "",
                  f"Frozen ImageNet Lite0 features → logistic regression; {compared['n_train']} training and "
                  f"{compared['n_validation']} validation photos (patient-grouped, class-capped). Camera probe: "
                  "balanced accuracy telling ODIR from EyePACS among normal eyes (0.5 = unreadable).", "",
                  "| prepare(contrast=…) | validation macro-F1 | validation DR recall | camera probe |",
                  "|---|---|---|---|"]
        lines += [f"| {k} | {v['validation_macro_f1']:.3f} | {v['validation_dr_recall']:.3f} | "
                  f"{v['camera_probe_balanced_accuracy']:.3f} |" for k, v in compared["results"].items()]
    return "\n".join(lines) + "\n"


def confusion_figure(report: dict, classes: list[str]):
    """Plotly heat map of the confusion matrix (rows: truth, columns: prediction)."""
    import plotly.graph_objects as go

    cm = report["confusion_matrix"]
    fig = go.Figure(go.Heatmap(z=cm, x=classes, y=classes, colorscale="Blues", text=cm, texttemplate="%{text}"))
    fig.update_layout(title=f"Confusion matrix — {report['n']} photos, macro-F1 {report['macro_f1']:.3f}",
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")
    return fig
