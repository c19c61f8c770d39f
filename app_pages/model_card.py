"""The model card: what the model is, what it was trained on, how well it did on held-out data."""
import streamlit as st

from app_pages.shared import DISCLAIMER, get_classifier
from clarityx.screening.card_markdown import gate_lines, test_lines
from clarityx.screening.card_markdown import confusion_figure

classifier = get_classifier()
st.title("The model")
if classifier is not None:
    card = classifier.card
    st.markdown(f"**{card.name}** — {card.intended_use}")
    st.markdown(f"- **Architecture:** {card.architecture}\n"
                f"- **Initialisation:** {card.initialisation}\n"
                f"- **Input:** {card.input_size}×{card.input_size} px, cropped to the retina's field of view\n"
                f"- **Camera normalisation:** {card.contrast}\n"
                f"- **Calibration:** temperature {card.temperature:.2f}, fitted on held-out photos not used "
                "to stop training")
    test = card.metrics.get("test")
    if test:
        st.subheader("Held-out test results")
        st.markdown("\n".join(test_lines(test, card.classes)[:3]))
        cols = st.columns(4)
        auc = test.get("macro_roc_auc")
        cols[0].metric("Accuracy", f"{test['accuracy']:.1%}")
        cols[1].metric("Macro-F1", f"{test['macro_f1']:.3f}")
        cols[2].metric("Macro ROC-AUC", "–" if auc is None else f"{auc:.3f}")
        cols[3].metric("Calibration error (ECE)", f"{test['ece']:.3f}")
        st.dataframe([{"class": c, "precision": round(m["precision"], 3), "recall": round(m["recall"], 3),
                       "F1": round(m["f1"], 3), "photos": m["support"]} for c, m in test["per_class"].items()],
                     hide_index=True)
        fig = confusion_figure(test, card.classes)
        fig.update_layout(height=420)
        st.plotly_chart(fig, width="stretch")
        rest = test_lines(test, card.classes)
        st.markdown("\n".join(rest[rest.index("Per source:") if "Per source:" in rest else len(rest):]))
    gate = gate_lines(card.gate)
    if gate:
        st.subheader("The gate (photos it refuses)")
        st.markdown("\n".join(gate))
    if card.comparison:
        st.subheader("Runs compared")
        st.dataframe(card.comparison, hide_index=True)
    st.subheader("Training data")
    for k, v in card.data.items():
        if k != "label_mapping":
            st.markdown(f"- **{k.replace('_', ' ')}:** {v}")
    st.subheader("Limits")
    for item in card.limitations:
        st.markdown(f"- {item}")
st.caption(DISCLAIMER)
