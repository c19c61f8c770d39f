"""The model card, written for a person: what the model is, what it was trained on, how well it did on
held-out photos, and where it falls short. (The full technical card is the ``.card.md`` beside the model.)"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import streamlit as st

from app_pages.guidance import label
from app_pages.shared import CHART_CONFIG, DISCLAIMER, get_classifier
from clarityx.screening.card_markdown import confusion_figure, gate_lines, test_lines
from clarityx.screening.ood import ood_off_warning

NETWORKS = {"efficientnet_b0": "EfficientNet-B0",
            **{f"efficientnet_lite{n}{ms}": f"EfficientNet-Lite{n}" + (
                ", read at three depths (fine lesions and the whole eye)" if ms else "")
               for n in range(3) for ms in ("", "_ms")}}
IMAGENET = "started from weights trained on ImageNet (everyday photos)"
WEIGHTS = {**{f"lite{n}-imagenet": IMAGENET for n in range(3)}, "imagenet": IMAGENET,
           "random": "started from scratch (no pre-training)", "none": "started from scratch (no pre-training)"}
CONTRAST = {"clahe": "local contrast equalisation (CLAHE), which evens out cameras' different lighting",
            "ben_graham": "background subtraction (Ben Graham's method), which evens out cameras' different lighting",
            "none": "none"}
SPLITS = {"train": "training", "validation": "validation", "calibration": "calibration", "test": "test"}
SOURCES = {"odir": "ODIR-5K", "eyepacs": "EyePACS", "retina_dataset": "Retina dataset (GitHub)",
           "aptos": "APTOS 2019", "g1020": "G1020"}
POLICIES = {
    "dr_grade0_policy": {"normal": "Photos graded as no retinopathy (grade 0) were counted as normal eyes."},
    "dr_ungraded_policy": {"drop": "Retinopathy photos without a grade were left out."},
    "pre_made_augmented_copies": {"excluded": "Ready-made flipped or rotated copies in the downloads were left out.",
                                  "train-only": "Ready-made flipped or rotated copies were used for training only."},
}


PY_DICT = re.compile(r"\{'[^{}]*\}")
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


ENGINES = {"onnx": "ONNX Runtime, on this computer",
           "keras": "TensorFlow, on this computer (no ONNX graph in step with this model file: "
                    "`clarityx export --format onnx` makes one, and the app then starts faster)",
           "tflite": "TensorFlow Lite, on this computer (no heat maps)"}


def word(name: str) -> str:
    """An internal name (a class, a refusal reason, a data source) as a word."""
    return SOURCES.get(name) or label(name).lower()


def readable(text: str) -> str:
    """The card's generated lines without Python dicts or snake_case names (commands in `backticks` kept)."""
    def spell(m: re.Match) -> str:
        try:
            counts = ast.literal_eval(m.group())
        except (ValueError, SyntaxError):
            return m.group()
        return "(" + ", ".join(f"{word(str(k))} {v}" for k, v in counts.items()) + ")"

    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside backticks
        parts[i] = SNAKE.sub(lambda m: word(m.group()), PY_DICT.sub(spell, parts[i]))
        parts[i] = re.sub(r"\b(odir|eyepacs)\b", lambda m: SOURCES[m.group()], parts[i])
    return "`".join(parts)


def initialisation(text: str) -> str:
    """``lite0-imagenet, then run.keras`` in words."""
    first, _, then = text.partition(", then ")
    return WEIGHTS.get(first, first) + (f", then from the trained model {then}" if then else "")


def value(v):
    """A card value that an older card stored as the text of a Python list or dict, read back."""
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v
    return v


def data_ui(data: dict) -> None:
    """Training data in sentences and small tables: no raw structures, no build paths."""
    sources = value(data.get("source")) or []
    if sources:
        names = ", ".join(Path(str(s)).name for s in (sources if isinstance(sources, list) else [sources]))
        st.markdown(f"**Datasets:** {names}")
    if data.get("licence"):
        st.markdown(f"**Licence:** {data['licence']}")
    counts = value(data.get("counts"))
    if isinstance(counts, dict) and counts:
        classes = list(dict.fromkeys(c for split in counts.values() for c in split))
        st.markdown("**Photos of each class in each part** (a patient's photos are all in one part):")
        st.dataframe([{"condition": label(c), **{SPLITS.get(s, s): counts[s].get(c, 0) for s in counts}}
                      for c in classes], hide_index=True)
    sources_by_split = value(data.get("sources"))
    if isinstance(sources_by_split, dict) and sources_by_split:
        st.markdown("**Where the photos came from:** " + "; ".join(
            f"{SPLITS.get(s, s)}: " + ", ".join(f"{n:,} {SOURCES.get(k, k)}" for k, n in by.items())
            for s, by in sources_by_split.items()))
    notes = [POLICIES[k].get(str(data[k])) for k in POLICIES if k in data]
    if data.get("photos_in_two_datasets"):
        notes.append(f"{data['photos_in_two_datasets']:,} photos that were in two of the downloads were read once.")
    notes += list(value(data.get("defects_handled")) or [])
    for note in filter(None, notes):
        st.markdown(f"- {note}")


# The training-runs table's columns in words (a column not listed keeps its name, spelled out).
RUN_COLUMNS = {"run": "run", "kind": "what was trained", "validation_macro_f1": "macro-F1 (validation)",
               "macro_f1": "macro-F1 (test)", "accuracy": "accuracy (test)",
               "min_recall": "lowest share found of one condition (test)", "ece": "calibration error, ECE (test)",
               "notes": "notes"}

# One sentence each for the figures a specialist reads (shown beside them on the page).
MEANINGS = {
    "macro-F1": "Macro-F1: for each condition, a score from 0 to 1 that is high only when the model both finds "
                "that condition and is right when it names it; the average over conditions, so a rare condition "
                "counts as much as a common one.",
    "ROC-AUC": "Macro ROC-AUC: how well the model's percentages rank photos with a condition above photos "
               "without it (1 = always, 0.5 = no better than chance), averaged over conditions.",
    "ECE": "Calibration error (ECE): how far its percentages are from how often it is right — 0.05 means a "
           "photo given 80% is right about 75-85% of the time.",
    "distance": "The distance test: each photo's features are compared with those of the training photos "
                "(a Mahalanobis distance); a photo farther away than nearly all training photos is refused as "
                "unfamiliar instead of being given an answer.",
    "camera": "The camera probe: a simple classifier is asked to tell, from the model's features alone, which "
              "camera (dataset) took photos of normal eyes. 0.5 means it cannot tell; near 1 means the "
              "features carry the camera, so part of what the model learned may be the camera, not the eye.",
}
CAMERA_SECTION = "Does it recognise the camera?"
# The card's limitations point to its camera probe: on this page it is the section of that name (a card
# without the probe's figure loses the pointer).
CAMERA_POINTER = " (see the camera probe in the card)"


def run_rows(comparison: list[dict]) -> list[dict]:
    """The runs a model was chosen against, with columns in words and figures rounded."""
    return [{RUN_COLUMNS.get(k, k.replace("_", " ")): (f"{v:.3f}" if isinstance(v, float) else v)
             for k, v in run.items()} for run in comparison]


def limitation(text: str, probe_shown: bool) -> str:
    return readable(text.replace(CAMERA_POINTER, f" (see “{CAMERA_SECTION}” below)" if probe_shown else ""))


def per_class_rows(test: dict) -> list[dict]:
    return [{"condition": label(c), "found (recall)": f"{m['recall']:.0%}", "right when it said so (precision)":
             f"{m['precision']:.0%}", "F1": f"{m['f1']:.2f}", "test photos": m["support"]}
            for c, m in test["per_class"].items()]


classifier = get_classifier()
st.title("The model")
if classifier is not None:
    card = classifier.card
    if classifier.ood_off:  # never silent: photos unlike the training set get an answer anyway
        st.warning(ood_off_warning(classifier.ood_off), icon="⚠️")
    trained = card.training.get("finished", "unknown date")
    st.markdown(f"**{card.name}** (trained {trained}) — {readable(card.intended_use)}")
    st.markdown(f"- **Looks for:** {', '.join(label(c) for c in card.classes)}\n"
                f"- **Network:** {NETWORKS.get(card.backbone, card.backbone.replace('_', ' '))}, "
                f"{initialisation(card.initialisation)}\n"
                f"- **Photo size:** {card.input_size}×{card.input_size} pixels, cropped to the retina\n"
                f"- **Camera normalisation:** {CONTRAST.get(card.contrast, card.contrast)}\n"
                f"- **Calibration:** its probabilities are rescaled (temperature {card.temperature:.2f}) on "
                "held-out photos not used to train it\n"
                f"- **Runs on:** {ENGINES.get(classifier.engine, classifier.engine)}")
    with st.expander("Technical details"):
        st.markdown(f"- **Architecture:** {card.architecture}\n- **Card version:** {card.version}")
    test = card.metrics.get("test")
    if test:
        st.subheader("How well it did on held-out test photos")
        st.markdown(readable("\n".join(test_lines(test, card.classes)[:3])))
        cols = st.columns(4)
        auc = test.get("macro_roc_auc")
        cols[0].metric("Accuracy", f"{test['accuracy']:.0%}")
        cols[1].metric("Macro-F1", f"{test['macro_f1']:.2f}")
        cols[2].metric("Macro ROC-AUC", "–" if auc is None else f"{auc:.2f}")
        cols[3].metric("Calibration error (ECE)", f"{test['ece']:.2f}")
        st.dataframe(per_class_rows(test), hide_index=True)
        st.caption(" ".join(MEANINGS[k] for k in ("macro-F1", "ROC-AUC", "ECE")))
        fig = confusion_figure(test, card.classes)
        names = [label(c) for c in card.classes]  # the conditions as people name them, not internal keys
        fig.update_traces(x=names, y=names, hovertemplate="true: %{y}<br>predicted: %{x}<br>%{z} photos<extra></extra>")
        fig.update_layout(height=420)
        st.plotly_chart(fig, width="stretch", config=CHART_CONFIG)
        rest = test_lines(test, card.classes)
        st.markdown(readable("\n".join(rest[rest.index("Per source:") if "Per source:" in rest else len(rest):])))
    gate = gate_lines(card.gate)
    if gate:
        st.subheader("The gate (photos it refuses)")
        st.markdown(readable("\n".join(gate)))
        st.caption(MEANINGS["distance"])
    if card.comparison:
        with st.expander("Training runs it was chosen against"):
            st.dataframe(run_rows(card.comparison), hide_index=True)
            st.caption(" ".join(MEANINGS[k] for k in ("macro-F1", "ECE")))
    st.subheader("Training data")
    data_ui(card.data)
    probe = card.metrics.get("camera_probe_test_normal_eyes")
    probe_shown = isinstance(probe, dict) and probe.get("balanced_accuracy") is not None
    st.subheader("Limits")
    for item in card.limitations:
        st.markdown(f"- {limitation(item, probe_shown)}")
    if probe_shown:
        st.subheader(CAMERA_SECTION)
        counts = ", ".join(f"{n:,} {SOURCES.get(k, k)}" for k, n in probe.items()
                           if k not in ("n", "balanced_accuracy") and isinstance(n, int))
        st.markdown(f"On {probe.get('n', 0):,} test photos of normal eyes ({counts}), the camera was told apart "
                    f"{probe['balanced_accuracy']:.0%} of the time (balanced: 50% would mean it cannot tell).")
        st.caption(MEANINGS["camera"])
st.caption(DISCLAIMER)
