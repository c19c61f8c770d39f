"""ClarityX: a fundus-photo screening aid that runs entirely on this computer.

    streamlit run app.py
"""
import streamlit as st

from app_pages.shared import start_model_loading

st.set_page_config(page_title="ClarityX", page_icon=":material/visibility:", layout="wide")

pages = [
    st.Page("app_pages/screen.py", title="Screen your eyes", icon=":material/search:", default=True),
    st.Page("app_pages/history.py", title="History", icon=":material/timeline:"),
    st.Page("app_pages/model_card.py", title="Model", icon=":material/description:"),
    st.Page("app_pages/about.py", title="About & privacy", icon=":material/lock:"),
]
st.navigation(pages).run()
start_model_loading()  # the model loads in the background (ONNX Runtime: well under a second)
