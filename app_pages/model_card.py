"""The model card: what the model is, what it was trained on, how well it did on held-out data."""
import streamlit as st

from app_pages.shared import DISCLAIMER, get_classifier
from clarityx.card_markdown import gate_lines
from clarityx.evaluate import confusion_figure

classifier = get_classifier()
st.title("The model")
if classifier is not None:
    card = classifier.card
    st.markdown(f"**{card.name}** — {card.intended_use}")
    st.markdown(f"- **Architecture:** {card.architecture}\n"
                f"- **Initialisation:** {card.initialisation}\n"
                f"- **Input:** {card.input_size}×{card.input_size} px, cropped to the retina's field of view\n"
                f"- **Calibration:** temperature {card.temperature:.2f}, fitted on validation photos")
    test = card.metrics.get("test")
    if test:
        st.subheader("Held-out test results")
        st.write(f"{test['n']} photos never used in training in any form (near-duplicates grouped).")
        cols = st.columns(4)
        cols[0].metric("Accuracy", f"{test['accuracy']:.1%}")
        cols[1].metric("Macro-F1", f"{test['macro_f1']:.3f}")
        cols[2].metric("Macro ROC-AUC", f"{test['macro_roc_auc']:.3f}")
        cols[3].metric("Calibration error (ECE)", f"{test['ece']:.3f}")
        st.dataframe([{"class": c, "precision": round(m["precision"], 3), "recall": round(m["recall"], 3),
                       "F1": round(m["f1"], 3), "photos": m["support"]} for c, m in test["per_class"].items()],
                     hide_index=True)
        fig = confusion_figure(test, card.classes)
        fig.update_layout(height=420)
        st.plotly_chart(fig, width="stretch")
    by_source = card.metrics.get("test_by_source")
    if by_source:
        st.caption("Accuracy by image source (camera/collection): " + "; ".join(
            f"{src} {m['accuracy']:.0%} of {m['n']}" for src, m in by_source.items()))
    gate = gate_lines(card.gate)
    if gate:
        st.subheader("The gate (photos it refuses)")
        st.markdown("\n".join(gate))
    if card.comparison:
        st.subheader("Initialisations compared")
        st.dataframe(card.comparison, hide_index=True)
    st.subheader("Training data")
    for k, v in card.data.items():
        st.markdown(f"- **{k.replace('_', ' ')}:** {v}")
    st.subheader("Limits")
    for item in card.limitations:
        st.markdown(f"- {item}")
st.caption(DISCLAIMER)
