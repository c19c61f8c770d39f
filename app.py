"""ClarityX: a fundus-photo screening aid that runs entirely on this computer.

    streamlit run app.py
"""
from pathlib import Path

import streamlit as st

from app_pages.shared import model_picker, start_model_loading

# The tab's icon is a file of this project, sent inside the page: a ":material/...:" or emoji icon
# would make the browser fetch it from Google's or jsDelivr's servers.
ICON = Path(__file__).resolve().parent / "app_pages" / "icon.svg"
st.set_page_config(page_title="ClarityX", page_icon=str(ICON), layout="wide")
start_model_loading()  # first thing: the model loads in the background while the page is drawn

pages = [
    st.Page("app_pages/screen.py", title="Screen your eyes", icon=":material/search:", default=True),
    st.Page("app_pages/history.py", title="History", icon=":material/timeline:"),
    st.Page("app_pages/batch.py", title="Many photos", icon=":material/photo_library:"),
    st.Page("app_pages/retrain.py", title="Retrain", icon=":material/model_training:"),
    st.Page("app_pages/model_card.py", title="Model", icon=":material/description:"),
    st.Page("app_pages/about.py", title="About & privacy", icon=":material/lock:"),
]
navigation = st.navigation(pages)
model_picker()
navigation.run()
