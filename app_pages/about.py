"""About & privacy."""
import streamlit as st

from app_pages.guidance import conditions_known, spoken_list
from app_pages.shared import DISCLAIMER
from clarityx.screening.classes import CLASSES

NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
COUNT = NUMBERS[len(CLASSES)] if len(CLASSES) < len(NUMBERS) else str(len(CLASSES))

st.title("About ClarityX & your privacy")
st.markdown(f"""
**Everything runs on this computer.** The photo you upload or take is decoded, checked and analysed
in this program's memory. It is never sent to a server and is forgotten when you close the page or
load another photo. Only when you press **Save this visit** does ClarityX keep anything: a small
thumbnail and the results, in one file on this computer (the History page says where, and deletes
visits or everything). Reports are made in memory for your download. Usage statistics are switched off.

**What ClarityX does.** It checks that the photo is a gradable fundus photograph, then a neural
network (an EfficientNet-Lite, a small image network) ranks how much it resembles photos of normal eyes,
{spoken_list(conditions_known(CLASSES), "and")}, flags possible
referable diabetic retinopathy, and a heat map (Grad-CAM) shows which parts of the photo drove that
answer. Other models you pick in the sidebar answer their own question — a diabetic-retinopathy grade
model gives a grade from 0 (none) to 4 (proliferative) — and the Model page says what each one knows.

**What it does not do.** It does not diagnose, the bundled model knows only these {COUNT} classes, and it was trained
on public research photos from a few cameras and hospitals. Many eye diseases are invisible to it;
the Model page says how often it called such eyes normal.
""")
st.warning(DISCLAIMER)
