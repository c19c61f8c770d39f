"""ClarityX: a fundus-photo screening aid that runs entirely on this computer.

    streamlit run app.py
"""
import streamlit as st

from app_pages.shared import start_model_loading

st.set_page_config(page_title="ClarityX", page_icon="👁️", layout="wide")
start_model_loading()  # TensorFlow and the model load in the background; the page is usable at once

pages = [
    st.Page("app_pages/screen.py", title="Screen a photo", icon="🔍", default=True),
    st.Page("app_pages/model_card.py", title="Model", icon="📋"),
    st.Page("app_pages/about.py", title="About & privacy", icon="🔒"),
]
st.navigation(pages).run()
